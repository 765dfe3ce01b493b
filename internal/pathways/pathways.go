// Package pathways validates expected paths ("A -> B:port" must work) and detects
// dependencies that were healthy in a baseline window and have since vanished or started
// failing.
package pathways

import (
	"context"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flowscope/flowscope/internal/depgraph"
	"github.com/flowscope/flowscope/internal/specfile"
	"github.com/flowscope/flowscope/internal/store"
)

// ParseExpectations reads an expectations file:
//
//	paths:
//	  - "shop/web -> shop/api:8080"
//	  - {from: shop/api, to: shop/svc/db, port: 5432}
//
// The port is the server's (for a Service, the target port of its pods).
func ParseExpectations(file string, data []byte) ([]specfile.Path, error) {
	docs, err := specfile.Documents(file, data)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, &specfile.Error{File: file, Line: 1, Column: 1, Msg: "expected one YAML document with a list of paths"}
	}
	f, err := specfile.Fields(file, docs[0], "paths")
	if err != nil {
		return nil, err
	}
	list, ok := f["paths"]
	if !ok || list.Kind != yaml.SequenceNode {
		return nil, specfile.At(file, docs[0], "expected paths: a list of \"from -> to:port\"")
	}
	var out []specfile.Path
	for _, n := range list.Content {
		p, err := specfile.PathNode(file, n, false)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Status of an expected path.
type Status string

// Statuses.
const (
	Healthy  Status = "healthy"
	Degraded Status = "degraded"
	Failing  Status = "failing"
	Missing  Status = "missing" // no connection on the path in the window
)

// Expected is the verdict on one expected path.
type Expected struct {
	specfile.Path
	Status         Status         `json:"status"`
	Counters       store.Counters `json:"counters"`
	FailureRate    float64        `json:"failure_rate"`
	RetransmitRate float64        `json:"retransmit_rate"`
}

// Change kinds.
const (
	ChangeVanished = "vanished"
	ChangeFailing  = "failing"
)

// Change is a dependency that was healthy in the baseline and no longer is.
type Change struct {
	Edge                store.EdgeKey  `json:"edge"`
	Change              string         `json:"change"` // vanished or failing
	Baseline            store.Counters `json:"baseline"`
	Current             store.Counters `json:"current"`
	BaselineFailureRate float64        `json:"baseline_failure_rate"`
	FailureRate         float64        `json:"failure_rate"`
}

// Report is the answer of a check.
type Report struct {
	From         time.Time  `json:"from"`
	To           time.Time  `json:"to"`
	BaselineFrom time.Time  `json:"baseline_from"`
	BaselineTo   time.Time  `json:"baseline_to"`
	Expected     []Expected `json:"expected"`
	Changes      []Change   `json:"changes"`
}

// MinBaselineConns is how many connections an edge needs in the baseline to count as an
// established dependency; BaselineHealthy is the failure rate below which it was healthy.
const (
	MinBaselineConns = 5
	BaselineHealthy  = 0.01
)

// Check queries the store for both windows and evaluates.
func Check(ctx context.Context, st store.Querier, window, baseline store.Range, expect []specfile.Path) (Report, error) {
	cur, err := st.Edges(ctx, store.EdgeQuery{Range: window})
	if err != nil {
		return Report{}, err
	}
	base, err := st.Edges(ctx, store.EdgeQuery{Range: baseline})
	if err != nil {
		return Report{}, err
	}
	r := Evaluate(cur, base, expect)
	r.From, r.To, r.BaselineFrom, r.BaselineTo = window.From, window.To, baseline.From, baseline.To
	return r, nil
}

// Evaluate judges expected paths on the window's edges and compares them with the baseline's.
func Evaluate(window, baseline []store.Edge, expect []specfile.Path) Report {
	r := Report{Expected: []Expected{}, Changes: []Change{}}
	for _, p := range expect {
		var c store.Counters
		for _, e := range window {
			if e.Src == p.From && (e.Dst == p.To || e.Service == p.To) && (p.Port == 0 || e.Port == p.Port) {
				c.Add(e.Counters)
			}
		}
		x := Expected{Path: p, Counters: c}
		var h depgraph.Health
		h, x.FailureRate, x.RetransmitRate = depgraph.Classify(c)
		switch {
		case c.Flows == 0 && c.Opened == 0:
			x.Status = Missing
		case h == depgraph.Failing:
			x.Status = Failing
		case h == depgraph.Degraded:
			x.Status = Degraded
		default:
			x.Status = Healthy
		}
		r.Expected = append(r.Expected, x)
	}
	now := make(map[store.EdgeKey]store.Counters, len(window))
	for _, e := range window {
		now[e.EdgeKey] = e.Counters
	}
	for _, b := range baseline {
		_, bRate, _ := depgraph.Classify(b.Counters)
		if b.Opened < MinBaselineConns || bRate >= BaselineHealthy {
			continue
		}
		c := now[b.EdgeKey]
		ch := Change{Edge: b.EdgeKey, Baseline: b.Counters, Current: c, BaselineFailureRate: bRate}
		h, rate, _ := depgraph.Classify(c)
		ch.FailureRate = rate
		switch {
		case c.Flows == 0 && c.Opened == 0:
			ch.Change = ChangeVanished
		case h == depgraph.Failing:
			ch.Change = ChangeFailing
		default:
			continue
		}
		r.Changes = append(r.Changes, ch)
	}
	sort.Slice(r.Changes, func(i, j int) bool {
		a, b := r.Changes[i], r.Changes[j]
		if a.Change != b.Change {
			return a.Change < b.Change
		}
		return a.Edge.String() < b.Edge.String()
	})
	return r
}
