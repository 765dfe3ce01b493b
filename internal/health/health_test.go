package health

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowscope/flowscope/internal/sketch"
	"github.com/flowscope/flowscope/internal/store"
)

func rtt(vs ...uint32) *sketch.Sketch {
	var s sketch.Sketch
	for _, v := range vs {
		s.Add(v)
	}
	return &s
}

// TestZones: zones sum the paths they are the client end of (out, with RTT) and the server
// end of (in); ends without a zone make paths but no zone; paths come busiest first.
func TestZones(t *testing.T) {
	paths := []store.ZoneStats{
		{Client: "a", Server: "b", Counters: store.Counters{Flows: 10, Opened: 10, Closed: 10, Refused: 5, BytesClientToServer: 100}, RTT: rtt(100, 200)},
		{Client: "a", Server: "a", Counters: store.Counters{Flows: 4, Opened: 4, Closed: 4, BytesClientToServer: 1000}, RTT: rtt(50)},
		{Client: store.NoZone, Server: "b", Counters: store.Counters{Flows: 2, Opened: 2, Closed: 2, BytesClientToServer: 10}, RTT: rtt()},
		{Client: "b", Server: store.NoZone, Counters: store.Counters{Flows: 1, Opened: 1, Closed: 1, Retransmits: 1, BytesClientToServer: 10}, RTT: rtt(9000)},
	}
	groups, out := zones(paths)
	type g struct {
		name             string
		out, in          uint64
		health           string
		failure, retrans float64
	}
	var got []g
	for _, z := range groups {
		got = append(got, g{z.Name, z.Out.Opened, z.In.Opened, string(z.Health), z.FailureRate, z.RetransmitRate})
	}
	want := []g{{"a", 14, 4, "failing", 5.0 / 14, 0}, {"b", 1, 12, "degraded", 0, 1}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(g{})); diff != "" {
		t.Errorf("zones (-want +got):\n%s", diff)
	}
	var order []string
	for _, p := range out {
		order = append(order, p.From+">"+p.To)
	}
	if diff := cmp.Diff([]string{"a>a", "a>b", "->b", "b>-"}, order); diff != "" {
		t.Errorf("path order (-want +got):\n%s", diff)
	}
	if out[1].Health != "failing" || out[1].RTTp50us == 0 || out[2].RTTp50us != 0 {
		t.Errorf("paths: %+v", out)
	}
}

// TestZonesFromNodesWithoutPaths: a range without zone paths (written before they were kept)
// still has zones, from the nodes' zones.
func TestZonesFromNodesWithoutPaths(t *testing.T) {
	nodes := []store.NodeStats{
		{Node: "n1", Zone: "a", Out: store.Counters{Opened: 3, Closed: 3}, In: store.Counters{Opened: 1}, RTT: rtt(10)},
		{Node: "n2", Zone: "a", Out: store.Counters{Opened: 2, Closed: 2}, RTT: rtt(20)},
		{Node: "n3", Out: store.Counters{Opened: 7}, RTT: rtt()},
	}
	got := nodeZones(nodes)
	if len(got) != 1 || got[0].Name != "a" || got[0].Out.Opened != 5 || got[0].In.Opened != 1 || got[0].RTTp50us == 0 {
		t.Errorf("zones from nodes: %+v", got)
	}
}
