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
	// ZonePaths are the connections from one zone to another (the same zone included; "-"
	// for ends without a zone, such as those outside the cluster), busiest first.
	ZonePaths []ZonePath `json:"zone_paths"`
}

// ZonePath is the availability of the connections from one zone to another.
type ZonePath struct {
	From string `json:"from"`
	To   string `json:"to"`
	store.Counters
	FailureRate    float64         `json:"failure_rate"`
	RetransmitRate float64         `json:"retransmit_rate"`
	RTTp50us       uint32          `json:"rtt_p50_us"`
	RTTp99us       uint32          `json:"rtt_p99_us"`
	Health         depgraph.Health `json:"health"`
	// PeakBytesPerSecond is the busiest minute's bytes (both ways) per second of the path.
	PeakBytesPerSecond float64 `json:"peak_bytes_per_second"`
}

// EdgeHealth is one edge's availability.
type EdgeHealth struct {
	depgraph.Edge
	PeakBytesPerSecond float64 `json:"peak_bytes_per_second"`
}

// GroupHealth is the availability of a Kubernetes node's or zone's workloads (as clients for
// RTT and retransmits; connections in both roles). For a zone, Out counts the connections its
// workloads opened, In those they accepted (from any zone, or from outside).
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
	rep := Report{From: q.From, To: q.To, Edges: []EdgeHealth{}, Nodes: []GroupHealth{}, Zones: []GroupHealth{}, ZonePaths: []ZonePath{}}
	for _, e := range edges {
		rep.Edges = append(rep.Edges, EdgeHealth{Edge: depgraph.NewEdge(e), PeakBytesPerSecond: float64(e.PeakBytesPerMinute) / 60})
	}
	nodes, err := st.NodeHealth(ctx, q.Range)
	if err != nil {
		return Report{}, err
	}
	for _, n := range nodes {
		g := GroupHealth{Name: n.Node, Zone: n.Zone, Out: n.Out, In: n.In}
		g.rtt.Merge(n.RTT)
		rep.Nodes = append(rep.Nodes, finish(g))
	}
	paths, err := st.ZoneHealth(ctx, q.Range)
	if err != nil {
		return Report{}, err
	}
	rep.Zones, rep.ZonePaths = zones(paths)
	if len(paths) == 0 {
		// Data written before zone paths were kept: the zones of the nodes still tell.
		rep.Zones = nodeZones(nodes)
	}
	sort.Slice(rep.Nodes, func(i, j int) bool { return rep.Nodes[i].Name < rep.Nodes[j].Name })
	return rep, nil
}

// nodeZones sums node totals per zone of the node.
func nodeZones(nodes []store.NodeStats) []GroupHealth {
	byZone := map[string]*GroupHealth{}
	for _, n := range nodes {
		if n.Zone == "" {
			continue
		}
		z := byZone[n.Zone]
		if z == nil {
			z = &GroupHealth{Name: n.Zone}
			byZone[n.Zone] = z
		}
		z.Out.Add(n.Out)
		z.In.Add(n.In)
		z.rtt.Merge(n.RTT)
	}
	out := make([]GroupHealth, 0, len(byZone))
	for _, z := range byZone {
		out = append(out, finish(*z))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// zones sums zone paths per zone (as client: out, with RTT; as server: in) and rates each path.
func zones(paths []store.ZoneStats) ([]GroupHealth, []ZonePath) {
	byZone := map[string]*GroupHealth{}
	group := func(name string) *GroupHealth {
		g := byZone[name]
		if g == nil {
			g = &GroupHealth{Name: name}
			byZone[name] = g
		}
		return g
	}
	out := make([]ZonePath, 0, len(paths))
	for _, p := range paths {
		zp := ZonePath{From: p.Client, To: p.Server, Counters: p.Counters, PeakBytesPerSecond: float64(p.PeakBytesPerMinute) / 60}
		zp.Health, zp.FailureRate, zp.RetransmitRate = depgraph.Classify(p.Counters)
		zp.RTTp50us, zp.RTTp99us = p.RTT.Quantile(0.5), p.RTT.Quantile(0.99)
		out = append(out, zp)
		if p.Client != store.NoZone {
			g := group(p.Client)
			g.Out.Add(p.Counters)
			g.rtt.Merge(p.RTT)
		}
		if p.Server != store.NoZone {
			group(p.Server).In.Add(p.Counters)
		}
	}
	groups := make([]GroupHealth, 0, len(byZone))
	for _, g := range byZone {
		groups = append(groups, finish(*g))
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].Name < groups[j].Name })
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if va, vb := a.Value(store.ByBytes), b.Value(store.ByBytes); va != vb {
			return va > vb
		}
		if a.From != b.From {
			return a.From < b.From
		}
		return a.To < b.To
	})
	return groups, out
}

func finish(g GroupHealth) GroupHealth {
	g.Health, g.FailureRate, g.RetransmitRate = depgraph.Classify(g.Out)
	g.RTTp50us, g.RTTp99us = g.rtt.Quantile(0.5), g.rtt.Quantile(0.99)
	return g
}
