package ownership

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
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
			one, each, chunked := build(), build(), build()
			one.claimWarmMin, chunked.claimWarmMin = 0, 0 // they warm (and reuse the entries found), each does not
			if seed%2 == 1 {                              // their memos go off after a few claims of each call
				one.memo.probe, one.memo.minHits = 100, 101
				chunked.memo.probe, chunked.memo.minHits = 3, 4
			}
			refs := make([]Ref, len(claims))
			_ = one.ObservePods(claims, refs) // ErrFull for some: the store is small on purpose
			if one.memo.hits == 0 {
				t.Fatal("the memo answered no claim: the test exercises nothing")
			}
			t.Logf("%d of %d claims answered by the memo; %d compactions", one.memo.hits, len(claims), one.compactions)
			for i := range claims {
				var r [1]Ref
				_ = each.ObservePods(claims[i:i+1], r[:])
				each.SetNodeZone("none", "")                                  // a write between calls: the memo forgets everything
				if x, y := render(one, refs[i]), render(each, r[0]); x != y { // ids may differ: compaction frees owners in map order
					t.Fatalf("claim %d (%+v): one call answers owner %+v, one claim per call %+v", i, claims[i], x, y)
				}
			}
			general := build() // each claim as a Claim, through Observe's general path
			for i := range claims {
				c := flowClaim(&claims[i])
				var r [1]Ref
				_ = general.ObserveLocal([]Claim{c}, r[:])
				if x, y := render(general, r[0]), render(one, refs[i]); x != y {
					t.Fatalf("claim %d (%+v): as a Claim it answers owner %+v, ObservePods %+v", i, claims[i], x, y)
				}
			}
			chunkRefs := make([]Ref, len(claims))
			for i := 0; i < len(claims); i += 7 { // calls with no other write between: the memo carries over
				_ = chunked.ObservePods(claims[i:min(i+7, len(claims))], chunkRefs[i:min(i+7, len(claims))])
			}
			for i := range claims {
				if x, y := render(chunked, chunkRefs[i]), render(one, refs[i]); x != y {
					t.Fatalf("claim %d: calls of 7 claims answer owner %+v, one call %+v", i, x, y)
				}
			}
			if one.Len() != each.Len() || chunked.Len() != each.Len() || general.Len() != each.Len() {
				t.Fatalf("one call leaves %d ranges, calls of 7 %d, one claim per call %d, as Claims %d", one.Len(), chunked.Len(), each.Len(), general.Len())
			}
			for a := range addrs {
				for sec := 0.0; sec < 700; sec += 3.5 {
					addr := netip.AddrFrom4([4]byte{10, 1, 0, byte(a)})
					x, y, z := one.Lookup(addr, 8080, at(sec), true), each.Lookup(addr, 8080, at(sec), true), chunked.Lookup(addr, 8080, at(sec), true)
					if diff := cmp.Diff(y, general.Lookup(addr, 8080, at(sec), true)); diff != "" {
						t.Fatalf("lookup of %s at %.1f s (-one claim per call +as Claims):\n%s", addr, sec, diff)
					}
					if diff := cmp.Diff(y, x); diff != "" {
						t.Fatalf("lookup of %s at %.1f s (-one claim per call +one call):\n%s", addr, sec, diff)
					}
					if diff := cmp.Diff(y, z); diff != "" {
						t.Fatalf("lookup of %s at %.1f s (-one claim per call +calls of 7):\n%s", addr, sec, diff)
					}
				}
			}
			if !slices.Equal(general.originSeen, each.originSeen) || !slices.Equal(one.originSeen, each.originSeen) {
				t.Fatalf("exporters last seen: one call %v, one claim per call %v, as Claims %v", one.originSeen, each.originSeen, general.originSeen)
			}
			for i := range claims { // the UID index: the richest owner of each pod
				x, okx := one.Resolve(claims[i].UID)
				y, oky := each.Resolve(claims[i].UID)
				z, okz := general.Resolve(claims[i].UID)
				if okx != oky || okz != oky || !cmp.Equal(x, y) || !cmp.Equal(z, y) {
					t.Fatalf("UID %s resolves: one call %+v, one claim per call %+v, as Claims %+v", claims[i].UID, x, y, z)
				}
			}
			for _, st := range []*Store{one, each, chunked, general} {
				checkIndexedBits(t, st)
			}
			for _, src := range []Source{SourceFlow, SourceHeartbeat} {
				x := testutil.ToFloat64(one.m.claimsOf(src))
				y := testutil.ToFloat64(each.m.claimsOf(src))
				if z := testutil.ToFloat64(general.m.claimsOf(src)); x != y || z != y {
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

// TestObservePodsMemoForgetsOtherWrites: a write between two ObservePods calls (here heartbeats
// that evict the range a claim was found inside) makes the next call forget the memo.
func TestObservePodsMemoForgetsOtherWrites(t *testing.T) {
	s := newTestStore(t, Config{MaxRangesPerKey: 2})
	hb := func(o Owner, from, to float64) {
		t.Helper()
		if err := s.Observe(Claim{Addr: ip, Owner: o, From: at(from), To: at(to), Source: SourceHeartbeat, Origin: "n"}); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(from, to float64) {
		t.Helper()
		var r [1]Ref
		p := LocalPod{Addr: ip, UID: podA.PodUID, Origin: "n", From: at(from).UnixNano(), To: at(to).UnixNano()}
		if err := s.ObservePods([]LocalPod{p}, r[:]); err != nil {
			t.Fatal(err)
		}
	}
	hb(podA, 0, 100)
	claim(10, 20) // inside A's range: remembered
	podC := pod("cart-c", "uid-c")
	hb(podB, 200, 300)
	hb(podC, 400, 500) // evicts A's range (it ended first): lookups before 100 answer gap
	claim(30, 40)      // not covered any more: stored, evicting B's range
	if got := s.Lookup(ip, 0, at(250), true); got.Reason != flow.ReasonGap {
		t.Fatalf("lookup inside the evicted range of B = %+v, want gap (the second claim must have been stored)", got)
	}
}

// checkIndexedBits checks that an owner's meta says the UID index names it exactly when it
// does.
func checkIndexedBits(t *testing.T, s *Store) {
	t.Helper()
	indexed := map[ownerID]bool{}
	for _, u := range s.uids.all() {
		indexed[u] = true
	}
	for id := 1; id < len(s.o.hot); id++ {
		if got := s.o.hot[id].m.indexed(); got != indexed[ownerID(id)] {
			t.Fatalf("owner %d: meta says indexed %v, the UID index %v", id, got, indexed[ownerID(id)])
		}
	}
}

// TestIndexedBitFollowsTheIndex: the UID index names a pod's bare owner (a flow named it
// first), then Kubernetes' richer one, then nothing (compacted): an owner's meta says so at
// every step, and a later local claim on the address where the bare owner's range is still
// the richest of the UID there is stored under the index's owner, as through Observe.
func TestIndexedBitFollowsTheIndex(t *testing.T) {
	s := newTestStore(t, Config{Horizon: time.Minute})
	s.HoldRefs(time.Hour)
	other := netip.MustParseAddr("10.244.9.9")
	claim := func(addr netip.Addr, from, to float64) Ref {
		var r [1]Ref
		if err := s.ObservePods([]LocalPod{{Addr: addr, UID: podA.PodUID, Origin: "n", From: at(from).UnixNano(), To: at(to).UnixNano()}}, r[:]); err != nil {
			t.Fatal(err)
		}
		return r[0]
	}
	claim(ip, 10, 11)
	checkIndexedBits(t, s)
	if u, _ := s.uids.get(podA.PodUID); s.o.detail(u) != 1 {
		t.Fatalf("the index names %+v, want the flow's bare owner", s.o.get(u))
	}
	apply(t, s, []step{kopen(podA, 0)})
	k := netip.MustParseAddr("10.244.9.10") // Kubernetes names the pod on another address
	if err := s.Open(Claim{Addr: k, Owner: podA, From: at(0), Source: SourceKubePod}); err != nil {
		t.Fatal(err)
	}
	checkIndexedBits(t, s)
	claim(ip, 12, 13) // the bare range on ip is not the index's owner any more
	if u, _ := s.uids.get(podA.PodUID); s.o.get(u).Workload == "" {
		t.Fatalf("the index names %+v, want Kubernetes' owner", s.o.get(u))
	}
	checkIndexedBits(t, s)
	claim(other, 14, 15)
	checkIndexedBits(t, s)
	s.Close(ip, 0, podA, SourceKubePod, at(20))
	s.Close(k, 0, podA, SourceKubePod, at(20))
	s.Compact(at(1000))
	checkIndexedBits(t, s)
}
