package ownership

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowscope/flowscope/internal/flow"
)

// TestObservePodsMemoIsExact checks that the memo of one ObservePods call changes nothing:
// claims given in one call (the memo answers repeats) and the same claims one per call (no
// memo) leave the same ranges, answer the same owners and count the same claims. The claims
// repeat a few addresses and pods, extend their ranges, name other pods on the same
// addresses, fall outside the horizon, and fill the store so that storing one compacts it.
func TestObservePodsMemoIsExact(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			addrs := 1 + rng.IntN(40)
			claims := make([]LocalPod, 3000)
			for i := range claims {
				a := rng.IntN(addrs)
				from := int64(rng.IntN(600)) * int64(time.Second)
				claims[i] = LocalPod{Addr: netip.AddrFrom4([4]byte{10, 1, 0, byte(a)}), UID: fmt.Sprintf("uid-%d", a+rng.IntN(3)/2*100),
					Origin: fmt.Sprintf("node-%d", rng.IntN(4)), From: t0.UnixNano() + from, To: t0.UnixNano() + from + int64(rng.IntN(30))*int64(time.Second),
					ListenPort: uint16(rng.IntN(2) * 8080)}
			}
			now := t0.Add(10 * time.Minute)
			maxRanges, hostAddr := 60+rng.IntN(100), rng.IntN(addrs)
			build := func() *Store {
				s, err := New(Config{Horizon: 5 * time.Minute, MaxRanges: maxRanges, KubeLag: time.Second}, func() time.Time { return now }, prometheus.NewRegistry())
				if err != nil {
					t.Fatal(err)
				}
				for a := range addrs {
					o := Owner{Kind: flow.EndpointPod, Namespace: "ns", Pod: fmt.Sprintf("p-%d", a), PodUID: fmt.Sprintf("uid-%d", a), Workload: "w", WorkloadKind: "Deployment"}
					addr := netip.AddrFrom4([4]byte{10, 1, 0, byte(a)})
					if err := s.Open(Claim{Addr: addr, Owner: o, From: t0, Source: SourceKubePod}); err != nil {
						t.Fatal(err)
					}
					if err := s.Observe(Claim{Addr: addr, Owner: o, From: t0, To: t0.Add(time.Duration(8+a%3) * time.Minute), Source: SourceHeartbeat, Origin: "node-0"}); err != nil {
						t.Fatal(err)
					}
				}
				if a := hostAddr; a%3 == 0 { // a host-network address: pods' claims go to their listening port
					_ = s.Observe(Claim{Addr: netip.AddrFrom4([4]byte{10, 1, 0, byte(a)}), Owner: Owner{Kind: flow.EndpointNode, Node: "n"},
						From: t0, To: t0.Add(time.Hour), Source: SourceHeartbeat, Origin: "node-1"})
				}
				s.SetKubeSynced(now)
				s.HoldRefs(time.Hour) // as the holding window does: refs stay renderable after the call
				return s
			}
			one, each := build(), build()
			refs := make([]Ref, len(claims))
			_ = one.ObservePods(claims, refs) // ErrFull for some: the store is small on purpose
			if one.memo.hits == 0 {
				t.Fatal("the memo answered no claim: the test exercises nothing")
			}
			t.Logf("%d of %d claims answered by the memo; %d compactions", one.memo.hits, len(claims), one.compactions)
			for i := range claims {
				var r [1]Ref
				_ = each.ObservePods(claims[i:i+1], r[:])
				if x, y := render(one, refs[i]), render(each, r[0]); x != y { // ids may differ: compaction frees owners in map order
					t.Fatalf("claim %d (%+v): one call answers owner %+v, one claim per call %+v", i, claims[i], x, y)
				}
			}
			if one.Len() != each.Len() {
				t.Fatalf("one call leaves %d ranges, one claim per call %d", one.Len(), each.Len())
			}
			for a := range addrs {
				for sec := 0.0; sec < 700; sec += 3.5 {
					addr := netip.AddrFrom4([4]byte{10, 1, 0, byte(a)})
					x, y := one.Lookup(addr, 8080, at(sec), true), each.Lookup(addr, 8080, at(sec), true)
					if diff := cmp.Diff(y, x); diff != "" {
						t.Fatalf("lookup of %s at %.1f s (-one claim per call +one call):\n%s", addr, sec, diff)
					}
				}
			}
			for _, src := range []Source{SourceFlow, SourceHeartbeat} {
				x := testutil.ToFloat64(one.m.claimsOf(src))
				y := testutil.ToFloat64(each.m.claimsOf(src))
				if x != y {
					t.Fatalf("%s claims counted: one call %v, one claim per call %v", src, x, y)
				}
			}
		})
	}
}

func render(s *Store, r Ref) Owner {
	if r == 0 {
		return Owner{}
	}
	v := s.View()
	defer v.Close()
	return v.Owner(r)
}
