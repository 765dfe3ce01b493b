package attribute

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
)

// TestAttributesAtEveryWarmth attributes connections in stores of three sizes: one that stays
// in the cache (nothing warmed), one whose rendered owners a flush warms, and one whose
// lookups it warms too (ownership.View.Warmth). Warming only prefetches, so every connection
// must come out joined and named by its own pods at every size.
func TestAttributesAtEveryWarmth(t *testing.T) {
	for _, tc := range []struct {
		pods int
		want ownership.Warmth
	}{{300, ownership.WarmNone}, {9000, ownership.WarmOwners}, {17000, ownership.WarmLookups}} {
		t.Run(fmt.Sprint(tc.pods), func(t *testing.T) {
			h := newHarness(t, Config{})
			addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 7, byte(i >> 8), byte(i)}) }
			owners, claims := make([]ownership.Owner, tc.pods), make([]ownership.Claim, tc.pods)
			for i := range owners {
				owners[i] = ownership.Owner{Kind: flow.EndpointPod, Namespace: "shop", Pod: fmt.Sprintf("p-%d", i), PodUID: fmt.Sprintf("uid-%d", i), Node: fmt.Sprintf("n%d", i%7)}
				claims[i] = ownership.Claim{Addr: addr(i), Owner: owners[i], From: at(0), To: at(100), Source: ownership.SourceHeartbeat, Origin: "exp-" + owners[i].Node}
			}
			if err := h.store.Observe(claims...); err != nil {
				t.Fatal(err)
			}
			if v := h.store.View(); v.Warmth() != tc.want {
				v.Close()
				t.Fatalf("warmth %d, want %d", v.Warmth(), tc.want)
			} else {
				v.Close()
			}
			const conns = 700 // many warming chunks, and a part of the flush that is not whole
			ends := func(i int) (c, s int) { return i * 7919 % tc.pods, (i*104729 + 13) % tc.pods }
			var ins []Input
			for i := range conns {
				c, s := ends(i)
				for _, dir := range []flow.Direction{flow.Client, flow.Server} {
					r := flow.Record{ConnID: uint64(i), Family: flow.IPv4, Direction: dir, Start: at(10), End: at(11), StartKnown: true, Outcome: flow.OK,
						Workload: flow.Workload{Kind: flow.KindPod, PodUID: owners[c].PodUID}}
					r.LocalAddr, r.LocalPort, r.RemoteAddr, r.RemotePort = addr(c), uint16(30000+i), addr(s), 8080
					local := owners[c]
					if dir == flow.Server {
						local, r.Workload.PodUID = owners[s], owners[s].PodUID
						r.LocalAddr, r.LocalPort, r.RemoteAddr, r.RemotePort = r.RemoteAddr, r.RemotePort, r.LocalAddr, r.LocalPort
					}
					ins = append(ins, Input{Exporter: "exp-" + local.Node, Node: local.Node, Record: r})
				}
			}
			h.add(ins...)
			h.advance(30)
			if len(h.out) != conns {
				t.Fatalf("%d connections written, want %d (%d held)", len(h.out), conns, h.a.Held())
			}
			for _, got := range h.out {
				c, s := ends(int(got.Client.Port) - 30000)
				if got.Observed != "both" || got.JoinDisagreement || got.Client.Pod != owners[c].Pod || got.Server.Pod != owners[s].Pod ||
					got.Client.PodUID != owners[c].PodUID || got.Server.Node != owners[s].Node {
					t.Fatalf("connection %s: %s %s (%s) -> %s (%s), disagreement %v; want %s -> %s",
						got.ConnKey, got.Observed, got.Client.Pod, got.Client.PodUID, got.Server.Pod, got.Server.Node, got.JoinDisagreement, owners[c].Pod, owners[s].Pod)
				}
			}
		})
	}
}
