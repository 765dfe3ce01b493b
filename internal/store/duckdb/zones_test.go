package duckdb

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowgen"
	"github.com/flowscope/flowscope/internal/store"
)

// TestZonePathsMatchTruth: per pair of zones, the store's totals over minute and rolled-up
// rows are the connections whose ends were in those zones; nodes carry their zone.
func TestZonePathsMatchTruth(t *testing.T) {
	s, conns := history(t, 90*time.Minute, 9000, time.Hour)
	zone := func(e flow.Endpoint) string {
		if store.Outside(e) || e.Zone == "" {
			return store.NoZone
		}
		return e.Zone
	}
	type pair struct{ client, server string }
	type totals struct{ flows, bytes uint64 }
	r := store.Range{From: t0.Add(7 * time.Minute), To: t0.Add(83 * time.Minute)}
	want := map[pair]totals{}
	for _, c := range conns {
		if c.End.Before(r.From) || !c.End.Before(r.To) {
			continue
		}
		p := pair{zone(c.Client), zone(c.Server)}
		if p.client == store.NoZone && p.server == store.NoZone {
			continue
		}
		w := want[p]
		w.flows++
		w.bytes += c.BytesClientToServer + c.BytesServerToClient
		want[p] = w
	}
	zs, err := s.ZoneHealth(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	got := map[pair]totals{}
	for _, z := range zs {
		got[pair{z.Client, z.Server}] = totals{z.Flows, z.BytesClientToServer + z.BytesServerToClient}
		if z.RTT == nil || z.RTT.Count() == 0 || z.RTT.Count() > z.Flows {
			t.Errorf("zone path %s -> %s: RTT of %v values for %d flows", z.Client, z.Server, z.RTT, z.Flows)
		}
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(pair{}, totals{})); diff != "" {
		t.Errorf("zone paths (-want +got):\n%s", diff)
	}
	nodes, err := s.NodeHealth(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if w := flowgen.Zone(int(n.Node[len(n.Node)-1] - '0')); n.Zone != w {
			t.Errorf("node %s in zone %q, want %q", n.Node, n.Zone, w)
		}
	}
	// Node totals and zone paths are keys of the same tables: the edges of a query leave them
	// out, a limit included.
	all, err := s.Edges(t.Context(), store.EdgeQuery{Range: r, Order: store.ByFailures})
	if err != nil {
		t.Fatal(err)
	}
	top, err := s.Edges(t.Context(), store.EdgeQuery{Range: r, Order: store.ByFailures, Limit: 5})
	if err != nil || len(top) != 5 {
		t.Fatalf("top 5: %d edges, %v", len(top), err)
	}
	for i, e := range all {
		if e.Direction > store.Egress {
			t.Errorf("edges include %s (%s)", e.EdgeKey, e.Direction)
		}
		if i < 5 && e.EdgeKey != top[i].EdgeKey {
			t.Errorf("top %d is %s, the full list has %s", i, top[i].EdgeKey, e.EdgeKey)
		}
	}
	var zoned int
	if err := s.db.QueryRow(`SELECT count(*) FROM endpoints WHERE zone IS NOT NULL`).Scan(&zoned); err != nil || zoned == 0 {
		t.Errorf("endpoints with a zone column: %d (%v)", zoned, err)
	}
}

// TestNodeZoneLearnedLater: a node first seen without a zone takes the zone its endpoints
// carry later, and keeps it across a restart.
func TestNodeZoneLearnedLater(t *testing.T) {
	clk := &clock{t: t0}
	dir := t.TempDir()
	s := open(t, dir, clk)
	conn := func(zone string, at time.Time) flow.Conn {
		pod := flow.Endpoint{Kind: flow.EndpointPod, Namespace: "a", Workload: "x", Pod: "x-1", Node: "n1", Zone: zone}
		srv := flow.Endpoint{Kind: flow.EndpointPod, Namespace: "a", Workload: "y", Pod: "y-1", Node: "n2", Port: 80}
		return flow.Conn{Start: at.Add(-time.Second), End: at, Client: pod, Server: srv, Outcome: flow.OK, Observed: "both"}
	}
	for i, z := range []string{"", "eu-1a"} {
		if err := s.Write(t.Context(), []flow.Conn{conn(z, t0.Add(time.Duration(i)*time.Minute))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, clk)
	defer s.Close()
	nodes, _ := s.Nodes(t.Context())
	zones := map[string]string{}
	for _, n := range nodes {
		zones[n.ID] = n.Zone
	}
	if zones["node/n1"] != "eu-1a" || zones["node/n2"] != "" {
		t.Errorf("node zones after restart: %v", zones)
	}
}
