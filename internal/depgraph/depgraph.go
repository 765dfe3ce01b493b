// Package depgraph answers "who talks to whom, how much, how healthy": the dependency graph of
// a time range and the top talkers, computed from the store's edges.
package depgraph

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/flowscope/flowscope/internal/store"
)

// Health classifies an edge over a range.
type Health string

// Health values.
const (
	Healthy  Health = "healthy"
	Degraded Health = "degraded" // some failures or retransmits
	Failing  Health = "failing"  // a large share of connections fail
	Idle     Health = "idle"     // no connection ended in the range
)

// Thresholds of Classify.
const (
	FailingRate         = 0.20 // failed / closed
	DegradedRate        = 0.01
	DegradedRetransRate = 0.05 // retransmits / flow records
)

// Classify returns the health of counters and the failure and retransmit rates behind it.
func Classify(c store.Counters) (h Health, failureRate, retransmitRate float64) {
	if c.Flows > 0 {
		retransmitRate = float64(c.Retransmits) / float64(c.Flows)
	}
	if c.Closed == 0 {
		if retransmitRate >= DegradedRetransRate {
			return Degraded, 0, retransmitRate
		}
		return Idle, 0, retransmitRate
	}
	failureRate = float64(c.Failed()) / float64(c.Closed)
	switch {
	case failureRate >= FailingRate:
		return Failing, failureRate, retransmitRate
	case failureRate >= DegradedRate || retransmitRate >= DegradedRetransRate:
		return Degraded, failureRate, retransmitRate
	}
	return Healthy, failureRate, retransmitRate
}

// Edge is an edge of the graph with its health.
type Edge struct {
	store.EdgeKey
	store.Counters
	FailureRate    float64 `json:"failure_rate"`
	RetransmitRate float64 `json:"retransmit_rate"`
	RTTp50us       uint32  `json:"rtt_p50_us,omitempty"`
	RTTp99us       uint32  `json:"rtt_p99_us,omitempty"`
	Health         Health  `json:"health"`
}

// NewEdge decorates a store edge with its health (and RTT percentiles when present).
func NewEdge(e store.Edge) Edge {
	out := Edge{EdgeKey: e.EdgeKey, Counters: e.Counters}
	out.Health, out.FailureRate, out.RetransmitRate = Classify(e.Counters)
	if e.RTT != nil {
		out.RTTp50us, out.RTTp99us = e.RTT.Quantile(0.5), e.RTT.Quantile(0.99)
	}
	return out
}

// Graph is the dependency graph of a range.
type Graph struct {
	From  time.Time    `json:"from"`
	To    time.Time    `json:"to"`
	Nodes []store.Node `json:"nodes"`
	Edges []Edge       `json:"edges"`
}

// Deps builds the graph of the edges q selects; nodes are those the edges reference, sorted.
func Deps(ctx context.Context, st store.Querier, q store.EdgeQuery) (Graph, error) {
	edges, err := st.Edges(ctx, q)
	if err != nil {
		return Graph{}, err
	}
	all, err := st.Nodes(ctx)
	if err != nil {
		return Graph{}, err
	}
	byID := make(map[string]store.Node, len(all))
	for _, n := range all {
		byID[n.ID] = n
	}
	g := Graph{From: q.From, To: q.To, Nodes: []store.Node{}, Edges: make([]Edge, 0, len(edges))}
	seen := map[string]bool{}
	for _, e := range edges {
		g.Edges = append(g.Edges, NewEdge(e))
		for _, id := range []string{e.Src, e.Dst, e.Service} {
			if id != "" && !seen[id] {
				seen[id] = true
				n, ok := byID[id]
				if !ok {
					n = store.Node{ID: id, Name: id}
				}
				g.Nodes = append(g.Nodes, n)
			}
		}
	}
	sort.Slice(g.Nodes, func(i, j int) bool { return g.Nodes[i].ID < g.Nodes[j].ID })
	return g, nil
}

// Grouping says what Top ranks.
type Grouping string

// Groupings.
const (
	ByEdge     Grouping = "edge"
	ByWorkload Grouping = "workload"
)

// TopRow is one ranked talker.
type TopRow struct {
	Rank     int            `json:"rank"`
	Name     string         `json:"name"`           // the edge ("src -> dst:port") or workload id
	Edge     *store.EdgeKey `json:"edge,omitempty"` // for edge grouping
	Value    uint64         `json:"value"`          // the ranking quantity
	Counters store.Counters `json:"counters"`
	Health   Health         `json:"health"`
}

// TopResult is the answer of Top.
type TopResult struct {
	From  time.Time   `json:"from"`
	To    time.Time   `json:"to"`
	By    store.Order `json:"by"`
	Group Grouping    `json:"group"`
	Rows  []TopRow    `json:"rows"`
}

// Value is the quantity o ranks by.
func Value(c store.Counters, o store.Order) uint64 { return c.Value(o) }

// Top ranks edges, or workloads (summing the edges at either end), by q.Order; q.Limit rows.
func Top(ctx context.Context, st store.Querier, q store.EdgeQuery, group Grouping) (TopResult, error) {
	if q.Order == "" {
		q.Order = store.ByBytes
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 10
	}
	res := TopResult{From: q.From, To: q.To, By: q.Order, Group: group, Rows: []TopRow{}}
	switch group {
	case ByEdge, "":
		res.Group = ByEdge
		q.Limit = limit
		edges, err := st.Edges(ctx, q)
		if err != nil {
			return res, err
		}
		for _, e := range edges {
			k := e.EdgeKey
			h, _, _ := Classify(e.Counters)
			res.Rows = append(res.Rows, TopRow{Name: k.String(), Edge: &k, Value: Value(e.Counters, q.Order), Counters: e.Counters, Health: h})
		}
	case ByWorkload:
		q.Limit = 0
		edges, err := st.Edges(ctx, q)
		if err != nil {
			return res, err
		}
		res.Rows = rankWorkloads(edges, q.Order, limit)
	default:
		return res, fmt.Errorf("unknown grouping %q (want edge or workload)", group)
	}
	for i := range res.Rows {
		res.Rows[i].Rank = i + 1
	}
	return res, nil
}

func rankWorkloads(edges []store.Edge, o store.Order, limit int) []TopRow {
	sum := map[string]*store.Counters{}
	for _, e := range edges {
		ends := []string{e.Src, e.Dst}
		if e.Src == e.Dst {
			ends = ends[:1]
		}
		for _, id := range ends {
			if sum[id] == nil {
				sum[id] = &store.Counters{}
			}
			sum[id].Add(e.Counters)
		}
	}
	rows := make([]TopRow, 0, len(sum))
	for id, c := range sum {
		h, _, _ := Classify(*c)
		rows = append(rows, TopRow{Name: id, Value: Value(*c, o), Counters: *c, Health: h})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Value != rows[j].Value {
			return rows[i].Value > rows[j].Value
		}
		return rows[i].Name < rows[j].Name
	})
	return rows[:min(limit, len(rows))]
}
