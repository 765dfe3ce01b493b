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
		base(flow.Client, flow.Workload{Kind: flow.KindPod, PodUID: "uid-6"}),
	}
	recs[len(recs)-1].LocalAddr, recs[len(recs)-1].RemoteAddr = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2") // (out of line)
	covered := make([]bool, reflect.TypeFor[kept]().NumField())
	for _, a := range recs {
		for _, b := range recs {
			var x, want kept
			var locs locations
			var xs, ws translations
			x.set(1, "node-a", &a, true, &locs, &xs)
			for i := range covered {
				covered[i] = covered[i] || !reflect.ValueOf(x).Field(i).IsZero()
			}
			xs.dropRecord(&x) // (as finish does)
			x.set(2, "node-b", &b, true, &locs, &xs)
			want.set(2, "node-b", &b, true, &locs, &ws)
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

// The compact fields give back what the record carried: addresses in every form (IPv4, IPv6,
// IPv4-mapped IPv6; a translation or none), counters and resets of any size, every
// outcome, the times' locations.
func TestKeptRoundTrips(t *testing.T) {
	var locs locations
	addrs := []string{"10.0.0.1", "2001:db8::7", "::ffff:10.0.0.9", "::", "0.0.0.0"}
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("x", 3600)}
	for i, o := range outcomes {
		for j, s := range addrs {
			a := netip.MustParseAddr(s)
			r := flow.Record{ConnID: 1, Direction: flow.Client, LocalAddr: a, RemoteAddr: netip.MustParseAddr(addrs[(j+1)%len(addrs)]),
				Start: at(1).In(zones[i%3]), End: at(2).In(zones[(i+j)%3]), Outcome: o}
			if i%2 == 0 {
				r.NatRemoteAddr = netip.MustParseAddr(addrs[(j+2)%len(addrs)])
			}
			r.BytesSent, r.BytesReceived, r.Retransmits, r.BytesRetransmitted = uint64(j)<<(7*i), uint64(i)<<(6*j), uint64(i+j), uint64(j)<<(8*i) // (past 32 bits too)
			r.ResetsSent, r.ResetsReceived = uint32(i)<<(3*j), uint32(j)<<(4*i)                                                                   // (past 16 bits too)
			var ts translations
			var x kept
			x.set(1, "n", &r, false, &locs, &ts)
			if x.localAddr(&ts) != r.LocalAddr || x.remoteAddr(&ts) != r.RemoteAddr || x.natAddr(&ts) != r.NatRemoteAddr || x.translated() != r.NatRemoteAddr.IsValid() {
				t.Errorf("addresses %v %v %v came back as %v %v %v", r.LocalAddr, r.RemoteAddr, r.NatRemoteAddr, x.localAddr(&ts), x.remoteAddr(&ts), x.natAddr(&ts))
			}
			if s, rc, segs, bytes := x.counters(&ts); s != r.BytesSent || rc != r.BytesReceived || segs != r.Retransmits || bytes != r.BytesRetransmitted {
				t.Errorf("counters %d %d %d %d came back as %d %d %d %d", r.BytesSent, r.BytesReceived, r.Retransmits, r.BytesRetransmitted, s, rc, segs, bytes)
			}
			if s, rc := x.resets(&ts); s != r.ResetsSent || rc != r.ResetsReceived {
				t.Errorf("resets %d %d came back as %d %d", r.ResetsSent, r.ResetsReceived, s, rc)
			}
			if x.outcome() != o {
				t.Errorf("outcome %q came back as %q", o, x.outcome())
			}
			if st, en := x.startTime(&locs), x.endTime(&locs); st != r.Start || en != r.End {
				t.Errorf("times %v %v came back as %v %v", r.Start, r.End, st, en)
			}
		}
	}
}

// Past maxLocations distinct locations, times are kept in UTC: the same moments.
func TestLocationsOverflowToUTC(t *testing.T) {
	var locs locations
	for i := range maxLocations + 10 {
		l := time.FixedZone("z", i)
		c := locs.code(l)
		switch {
		case i < maxLocations-1 && locs.at(c) != l:
			t.Fatalf("location %d interned as %v", i, locs.at(c))
		case i >= maxLocations-1 && locs.at(c) != time.UTC:
			t.Fatalf("location %d past the table: %v, want UTC", i, locs.at(c))
		}
	}
}

// outcomeCode and outcomes agree: every outcome's code names it.
func TestOutcomeCodes(t *testing.T) {
	for i, o := range outcomes {
		if c, ok := outcomeCode(o); !ok || int(c) != i {
			t.Errorf("outcomeCode(%q) = %d, %v; want %d", o, c, ok, i)
		}
	}
	if _, ok := outcomeCode("exploded"); ok {
		t.Error("an unknown outcome has a code")
	}
}

// natAddr is the record's translated address, invalid when it carries none.
func (r *kept) natAddr(ts *translations) netip.Addr {
	if !r.translated() {
		return netip.Addr{}
	}
	return ts.at(r.nat).addr.addr(ts.at(r.nat).is4)
}

// Records whose addresses are not both IPv4 keep them out of line and still join, are
// attributed and render their addresses as given: an IPv6 connection, and one whose client
// reports its addresses IPv4-mapped where the server reports them plain.
func TestAddressesOutOfLine(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		client, server         string // as the client's record gives them
		serverSide, clientSide string // as the server's record gives them
		store                  [2]string
	}{
		{"ipv6", "fd00::5", "fd00::9", "fd00::9", "fd00::5", [2]string{"fd00::5", "fd00::9"}},
		{"mapped", "::ffff:" + cartIP, "::ffff:" + authIP, authIP, cartIP, [2]string{cartIP, authIP}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.heartbeat(cart, tc.store[0], 0, 100)
			h.heartbeat(auth, tc.store[1], 0, 100)
			c, s := rec(flow.Client, cart, 10, 11), rec(flow.Server, auth, 10, 11)
			c.Record.LocalAddr, c.Record.RemoteAddr = netip.MustParseAddr(tc.client), netip.MustParseAddr(tc.server)
			s.Record.LocalAddr, s.Record.RemoteAddr = netip.MustParseAddr(tc.serverSide), netip.MustParseAddr(tc.clientSide)
			h.add(c, s)
			h.advance(30)
			if len(h.out) != 1 {
				t.Fatalf("conns %v, want one joined", names(h.out))
			}
			got := h.out[0]
			if got.Observed != "both" || got.Client.Name() != "shop/cart" || got.Server.Name() != "shop/auth" || got.JoinDisagreement {
				t.Errorf("conn %s %s -> %s (disagreement %v)", got.Observed, got.Client.Name(), got.Server.Name(), got.JoinDisagreement)
			}
			if got.Client.Addr != c.Record.LocalAddr || got.Server.Addr != s.Record.LocalAddr {
				t.Errorf("addresses %v -> %v, want each end's as its socket gave it: %v -> %v", got.Client.Addr, got.Server.Addr, c.Record.LocalAddr, s.Record.LocalAddr)
			}
			h.a.mu.Lock()
			used := h.a.nats.addrs.inUse() + h.a.nats.counts.inUse()
			h.a.mu.Unlock()
			if used != 0 {
				t.Errorf("%d address entries kept after the records were written", used)
			}
		})
	}
}
