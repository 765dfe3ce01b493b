package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/flowscope/flowscope/internal/depgraph"
)

func init() {
	register("deps", "the dependency graph: who talks to whom, how much, how healthy", runDeps)
	register("top", "top talkers by bytes, connections, failures or retransmits", runTop)
}

func runDeps(ctx context.Context, args []string) error {
	fs := newFlagSet("deps")
	var q queryFlags
	q.register(fs, "table, json or dot")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := q.checkOutput("table", "json", "dot"); err != nil {
		return err
	}
	var g depgraph.Graph
	raw, err := q.call(ctx, "GET", "/api/v1/deps", q.values(), nil, &g)
	if err != nil {
		return err
	}
	switch q.output {
	case "json":
		return printRaw(raw)
	case "dot":
		return depsDOT(g)
	}
	rows := make([][]string, 0, len(g.Edges))
	for _, e := range g.Edges {
		dst := fmt.Sprintf("%s:%d", e.Dst, e.Port)
		if e.Service != "" {
			dst += " (via " + e.Service + ")"
		}
		rows = append(rows, []string{e.Src, dst, e.Direction.String(), human(e.BytesClientToServer), human(e.BytesServerToClient),
			fmt.Sprint(e.Opened), fmt.Sprint(e.Failed()), pct(e.FailureRate), fmt.Sprint(e.Retransmits), string(e.Health)})
	}
	return table([]string{"SOURCE", "DESTINATION", "DIRECTION", "SENT", "RECEIVED", "CONNS", "FAILED", "FAIL%", "RETRANS", "HEALTH"}, rows)
}

var dotColour = map[depgraph.Health]string{depgraph.Healthy: "darkgreen", depgraph.Degraded: "orange", depgraph.Failing: "red", depgraph.Idle: "grey"}

func depsDOT(g depgraph.Graph) error {
	var b strings.Builder
	b.WriteString("digraph flowscope {\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n")
	for _, n := range g.Nodes {
		shape := "box"
		switch n.Kind {
		case "service":
			shape = "ellipse"
		case "network":
			shape = "cloud"
		case "unattributed":
			shape = "octagon"
		}
		fmt.Fprintf(&b, "  %q [shape=%s];\n", n.ID, shape)
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  %q -> %q [label=%q, color=%s];\n", e.Src, e.Dst,
			fmt.Sprintf("%d %s %s", e.Port, human(e.BytesClientToServer+e.BytesServerToClient), e.Health), dotColour[e.Health])
	}
	b.WriteString("}\n")
	_, err := fmt.Fprint(queryOut, b.String())
	return err
}

func runTop(ctx context.Context, args []string) error {
	fs := newFlagSet("top")
	var q queryFlags
	q.register(fs, "table or json")
	by := fs.String("by", "bytes", "rank by bytes, connections, failures or retransmits")
	group := fs.String("group", "edge", "rank edges or workloads")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := q.checkOutput("table", "json"); err != nil {
		return err
	}
	var res depgraph.TopResult
	raw, err := q.call(ctx, "GET", "/api/v1/top", q.values("by", *by, "group", *group), nil, &res)
	if err != nil {
		return err
	}
	if q.output == "json" {
		return printRaw(raw)
	}
	rows := make([][]string, 0, len(res.Rows))
	for _, r := range res.Rows {
		val := fmt.Sprint(r.Value)
		if res.By == "bytes" {
			val = human(r.Value)
		}
		c := r.Counters
		rows = append(rows, []string{fmt.Sprint(r.Rank), r.Name, val, human(c.BytesClientToServer + c.BytesServerToClient),
			fmt.Sprint(c.Opened), fmt.Sprint(c.Failed()), fmt.Sprint(c.Retransmits), string(r.Health)})
	}
	return table([]string{"#", strings.ToUpper(string(res.Group)), strings.ToUpper(string(res.By)), "BYTES", "CONNS", "FAILED", "RETRANS", "HEALTH"}, rows)
}
