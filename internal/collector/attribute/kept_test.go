package attribute

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
)

// set writes every field of the kept form: set over any earlier record's form gives what set
// gives over a zero one. The records between them set every field to something not zero.
func TestSetWritesEveryField(t *testing.T) {
	base := func(dir flow.Direction, w flow.Workload) flow.Record {
		return flow.Record{ConnID: 9, Direction: dir, LocalAddr: netip.MustParseAddr("10.0.0.1"), LocalPort: 40000,
			RemoteAddr: netip.MustParseAddr("10.0.0.2"), RemotePort: 80, Start: at(1), End: at(2), Workload: w}
	}
	full := base(flow.Client, flow.Workload{Kind: flow.KindPod, PodUID: "uid-a"})
	full.NatRemoteAddr, full.NatRemotePort, full.Interim, full.HostNetwork, full.Outcome = netip.MustParseAddr("10.0.0.3"), 8080, true, true, flow.Reset
	full.BytesSent, full.BytesReceived, full.Retransmits, full.BytesRetransmitted = 1, 2, 3, 4
	full.SrttUs, full.ResetsSent, full.ResetsReceived = 5, 6, 7
	full.Start, full.End = full.Start.In(time.FixedZone("x", 3600)), full.End.In(time.FixedZone("y", 7200))
	recs := []flow.Record{
		full,
		base(flow.Server, flow.Workload{Kind: flow.KindContainer, ContainerID: "c1"}),
		base(flow.Server, flow.Workload{Kind: flow.KindHost}),
		base(flow.Server, flow.Workload{Kind: flow.KindUnknown, PodUID: "uid-b"}),
		base(flow.Client, flow.Workload{Kind: flow.KindHost, Comm: "curl"}),
	}
	covered := make([]bool, reflect.TypeFor[kept]().NumField())
	for _, a := range recs {
		for _, b := range recs {
			var x, want kept
			x.set("exp-a", "node-a", &a, true)
			for i := range covered {
				covered[i] = covered[i] || !reflect.ValueOf(x).Field(i).IsZero()
			}
			x.set("exp-b", "node-b", &b, true)
			want.set("exp-b", "node-b", &b, true)
			if !reflect.DeepEqual(x, want) {
				t.Errorf("set over %+v:\n got %+v\nwant %+v", a.Workload, x, want)
			}
		}
	}
	for i, ok := range covered {
		if !ok {
			t.Errorf("no record sets kept.%s", reflect.TypeFor[kept]().Field(i).Name)
		}
	}
}

// A connection's times are the record's, in the record's locations.
func TestOutputTimesAsGiven(t *testing.T) {
	h := newHarness(t, Config{})
	in := rec(flow.Client, cart, 1, 2)
	in.Record.RemoteAddr = netip.MustParseAddr("1.1.1.1")
	a, b := time.FixedZone("a", 3600), time.FixedZone("b", -7200)
	in.Record.Start, in.Record.End = in.Record.Start.In(a), in.Record.End.In(b)
	h.add(in)
	h.advance(40)
	if len(h.out) != 1 {
		t.Fatalf("%d connections written", len(h.out))
	}
	c := h.out[0]
	if !c.Start.Equal(at(1)) || !c.End.Equal(at(2)) || c.Start.Location() != a || c.End.Location() != b {
		t.Errorf("start %v, end %v; want %v, %v", c.Start, c.End, in.Record.Start, in.Record.End)
	}
}
