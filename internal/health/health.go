// Package health answers "where is availability suffering": retransmit rates, RTT percentiles
// and failure rates per edge, Kubernetes node and zone, and the bytes/s peak of each path.
package health

import (
	"context"
	"sort"
	"time"

	"github.com/flowscope/flowscope/internal/depgraph"
	"github.com/flowscope/flowscope/internal/sketch"
	"github.com/flowscope/flowscope/internal/store"
)

// Report is the availability answer for a range.
type Report struct {
	From  time.Time     `json:"from"`
	To    time.Time     `json:"to"`
	Edges []EdgeHealth  `json:"edges"`
	Nodes []GroupHealth `json:"nodes"`
	Zones []GroupHealth `json:"zones"`
}

// EdgeHealth is one edge's availability.
type EdgeHealth struct {
	depgraph.Edge
	PeakBytesPerSecond float64 `json:"peak_bytes_per_second"`
}

// GroupHealth is the availability of a Kubernetes node's or zone's workloads (as clients for
// RTT and retransmits; connections in both roles).
type GroupHealth struct {
	Name           string          `json:"name"`
	Zone           string          `json:"zone,omitempty"`
	Out            store.Counters  `json:"out"`
	In             store.Counters  `json:"in"`
	FailureRate    float64         `json:"failure_rate"`
	RetransmitRate float64         `json:"retransmit_rate"`
	RTTp50us       uint32          `json:"rtt_p50_us"`
	RTTp99us       uint32          `json:"rtt_p99_us"`
	Health         depgraph.Health `json:"health"`
	rtt            sketch.Sketch
}

// Build computes the report: the q.Limit (default 20) worst edges by q.Order (default
// failures), and every node and zone.
func Build(ctx context.Context, st store.Querier, q store.EdgeQuery) (Report, error) {
	if q.Order == "" {
		q.Order = store.ByFailures
	}
	if q.Limit <= 0 {
		q.Limit = 20
	}
	q.WithRTT = true
	edges, err := st.Edges(ctx, q)
	if err != nil {
		return Report{}, err
	}
	rep := Report{From: q.From, To: q.To, Edges: []EdgeHealth{}, Nodes: []GroupHealth{}, Zones: []GroupHealth{}}
	for _, e := range edges {
		rep.Edges = append(rep.Edges, EdgeHealth{Edge: depgraph.NewEdge(e), PeakBytesPerSecond: float64(e.PeakBytesPerMinute) / 60})
	}
	nodes, err := st.NodeHealth(ctx, q.Range)
	if err != nil {
		return Report{}, err
	}
	zones := map[string]*GroupHealth{}
	for _, n := range nodes {
		g := GroupHealth{Name: n.Node, Zone: n.Zone, Out: n.Out, In: n.In}
		g.rtt.Merge(n.RTT)
		rep.Nodes = append(rep.Nodes, finish(g))
		if n.Zone == "" {
			continue
		}
		z := zones[n.Zone]
		if z == nil {
			z = &GroupHealth{Name: n.Zone}
			zones[n.Zone] = z
		}
		z.Out.Add(n.Out)
		z.In.Add(n.In)
		z.rtt.Merge(n.RTT)
	}
	for _, z := range zones {
		rep.Zones = append(rep.Zones, finish(*z))
	}
	sort.Slice(rep.Nodes, func(i, j int) bool { return rep.Nodes[i].Name < rep.Nodes[j].Name })
	sort.Slice(rep.Zones, func(i, j int) bool { return rep.Zones[i].Name < rep.Zones[j].Name })
	return rep, nil
}

func finish(g GroupHealth) GroupHealth {
	g.Health, g.FailureRate, g.RetransmitRate = depgraph.Classify(g.Out)
	g.RTTp50us, g.RTTp99us = g.rtt.Quantile(0.5), g.rtt.Quantile(0.99)
	return g
}
