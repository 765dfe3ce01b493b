package ownership

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/flow"
)

// memoAddr is address i of randomStore's: IPv4 for the first three, IPv6 beyond (the memo
// keys them differently).
func memoAddr(i int) netip.Addr {
	if i < 3 {
		return netip.AddrFrom4([4]byte{10, 2, 0, byte(i)})
	}
	return netip.AddrFrom16([16]byte{0: 0xfd, 15: byte(i)})
}

// randomStore fills a store with random Kubernetes and exporter ranges on a few addresses and
// host-network ports: handovers, overlaps (conflicts), closed and open ranges, evictions
// (MaxRangesPerKey) and a compaction.
func randomStore(t *testing.T, rng *rand.Rand, addrs int) *Store {
	t.Helper()
	now := at(900)
	s, err := New(Config{Horizon: 10 * time.Minute, MaxRangesPerKey: 4 + rng.IntN(6), SkewTolerance: time.Duration(rng.IntN(3)) * 100 * time.Millisecond,
		KubeLag: 10 * time.Second}, func() time.Time { return now }, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	sec := func() float64 { return float64(rng.IntN(9000)) / 10 }
	for range 40 * addrs {
		addr := memoAddr(rng.IntN(addrs))
		o := pod(fmt.Sprintf("w%d-p", rng.IntN(4)), fmt.Sprintf("uid-%d", rng.IntN(6)))
		var port uint16
		if rng.IntN(8) == 0 {
			port = 8080
		}
		switch from := sec(); rng.IntN(6) {
		case 5: // a Service's address
			_ = s.Open(Claim{Addr: addr, Owner: Owner{Kind: flow.EndpointService, Namespace: "ns", Service: fmt.Sprintf("svc-%d", rng.IntN(2))}, From: at(from),
				Source: SourceKubeService})
		case 0:
			_ = s.Open(Claim{Addr: addr, Port: port, Owner: o, From: at(from), Source: SourceKubePod})
		case 1:
			s.Close(addr, port, o, SourceKubePod, at(from))
		case 2:
			_ = s.Observe(Claim{Addr: addr, Owner: Owner{Kind: flow.EndpointNode, Node: "n1"}, From: at(from), To: at(from + 30), Source: SourceHeartbeat, Origin: "n1"})
		default:
			_ = s.Observe(Claim{Addr: addr, Port: port, Owner: o, From: at(from), To: at(from + float64(rng.IntN(120))), Source: SourceHeartbeat,
				Origin: fmt.Sprintf("n%d", rng.IntN(3))})
		}
	}
	s.SetKubeSynced(at(float64(600 + rng.IntN(300))))
	s.Compact(at(float64(600 + rng.IntN(300))))
	return s
}

// randomLookup looks up a random address of randomStore's, port and moment, and returns the
// query, the answer and its span.
func randomLookup(s *Store, rng *rand.Rand) (addr netip.Addr, port uint16, now int64, final bool, a Answer, sp span) {
	addr = memoAddr(rng.IntN(6))
	if addr.Is4() && rng.IntN(4) == 0 {
		addr = netip.AddrFrom16(addr.As16()) // the same address, IPv4-mapped
	}
	port = uint16(rng.IntN(2) * 8080)
	final = rng.IntN(2) == 0
	now = at(float64(rng.IntN(9500)) / 10).UnixNano()
	sp = span{lo: math.MinInt64, hi: math.MaxInt64}
	return addr, port, now, final, s.lookup(addr, port, now, final, &sp), sp
}

// TestLookupSpans checks the span a lookup reports: the answer is the same at every moment of
// it (probed at its ends and inside), and differs just outside it unless the span is cut
// short by design (the memo only needs a span that is not too wide).
func TestLookupSpans(t *testing.T) {
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 11))
		s := randomStore(t, rng, 1+rng.IntN(5))
		for range 3000 {
			addr, port, now, final, want, sp := randomLookup(s, rng)
			if sp.lo > now || now > sp.hi {
				t.Fatalf("seed %d: span [%d, %d] leaves out its moment %d", seed, sp.lo, sp.hi, now)
			}
			probes := []int64{sp.lo, sp.hi, sp.lo + (now-sp.lo)/2, now + (sp.hi-now)/2}
			for _, p := range probes {
				if p < t0.Add(-time.Hour).UnixNano() || p > t0.Add(2*time.Hour).UnixNano() {
					continue // an unbounded side
				}
				q := span{lo: math.MinInt64, hi: math.MaxInt64}
				if got := s.lookup(addr, port, p, final, &q); got != want {
					t.Fatalf("seed %d: %s:%d final=%v: at %d (span [%d, %d] of %d) answers %+v, at %d %+v", seed, addr, port, final, p, sp.lo, sp.hi, now, got, now, want)
				}
			}
		}
	}
}

// TestLookupMemoIsExact compares a memo View's answers with direct lookups over many random
// queries that repeat addresses at nearby moments.
func TestLookupMemoIsExact(t *testing.T) {
	var m LookupMemo
	var w LookupWarmer
	hits, services := 0, 0
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 13))
		s := randomStore(t, rng, 1+rng.IntN(5))
		if seed%2 == 1 {
			s.warmMin, s.claimWarmMin = 0, 0 // warming works (and hands its entries to the lookups)
		}
		c := 0 // the warming pipeline's chunks: its stages outlive Views and the writes between them
		for range 5 {
			v := s.MemoView(&m)
			for range 2000 {
				addr, port, now, final, want, sp := randomLookup(s, rng)
				if rng.IntN(2) == 0 {
					v.WarmStep(&w, c, []netip.Addr{memoAddr(rng.IntN(6)), addr}, []uint16{0, port}, []Ref{0})
					c++
				}
				if rng.IntN(100) == 0 {
					m.skip = rng.IntN(50) // as when it answers too few: lookups go around it for a while
				}
				if got := v.Lookup(addr, port, now, final); got != want {
					t.Fatalf("seed %d: %s:%d final=%v at %d: memo answers %+v, the store %+v", seed, addr, port, final, now, got, want)
				}
				if got, want := v.LookupBrief(addr, port, now, final), briefOf(want); got != want {
					t.Fatalf("seed %d: %s:%d final=%v at %d: brief answer %+v, want %+v", seed, addr, port, final, now, got, want)
				}
				if got, want := (View{s: s}).LookupBrief(addr, port, now, final), briefOf(want); got != want { // (no memo; the View's lock held)
					t.Fatalf("seed %d: %s:%d final=%v at %d: brief answer without a memo %+v, want %+v", seed, addr, port, final, now, got, want)
				}
				if port == 0 { // as the address a client dialled, translated (its own memo)
					if got, want := v.LookupServiceBrief(addr, now, final), briefOf(want); got != want {
						t.Fatalf("seed %d: %s final=%v at %d: translated address's answer %+v, want %+v", seed, addr, final, now, got, want)
					}
				}
				if want.Kind == flow.EndpointService {
					services++
				}
				if sp.hi-sp.lo > int64(time.Second) {
					hits++ // roughly: a wide span will answer later queries
				}
			}
			v.Close()
			if rng.IntN(2) == 0 { // a write between Views: the memo must forget what it changes
				addr := memoAddr(rng.IntN(6))
				from := float64(rng.IntN(9000)) / 10
				_ = s.Observe(Claim{Addr: addr, Owner: pod("x9-p", "uid-x"), From: at(from), To: at(from + 60), Source: SourceHeartbeat, Origin: "n7"})
			}
		}
	}
	if hits == 0 || services == 0 {
		t.Fatalf("%d queries had a span wider than a second, %d answered a Service: the test exercises too little", hits, services)
	}
}

// TestWarmLargeStore runs the warming steps (the lookups' taken only in stores of
// warmMinAddrs addresses or more, the claims' from warmClaimMinAddrs) on a store large enough
// for both and checks that claims and lookups answer as without them.
func TestWarmLargeStore(t *testing.T) {
	now := t0.Add(time.Hour)
	s, err := New(Config{KubeLag: time.Second}, func() time.Time { return now }, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s.HoldRefs(time.Hour)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 3, byte(i >> 8), byte(i)}) }
	for i := range warmMinAddrs + 100 {
		o := pod(fmt.Sprintf("w-p%d", i), fmt.Sprintf("uid-%d", i))
		_ = s.Open(Claim{Addr: addr(i), Owner: o, From: t0, Source: SourceKubePod})
		_ = s.Observe(Claim{Addr: addr(i), Owner: o, From: t0, To: now, Source: SourceHeartbeat, Origin: "n"})
	}
	s.SetKubeSynced(now)
	v := s.View()
	if v.Warmth() != WarmLookups {
		t.Fatal("the store is not large enough to warm")
	}
	v.Close()
	claims := make([]LocalPod, 500)
	for i := range claims {
		j := i * 37 % (warmMinAddrs + 200) // some addresses nobody claimed
		claims[i] = LocalPod{Addr: addr(j), UID: fmt.Sprintf("uid-%d", j), Origin: "n", From: t0.Add(time.Minute).UnixNano(), To: t0.Add(2 * time.Minute).UnixNano()}
	}
	refs := make([]Ref, len(claims))
	_ = s.ObservePods(claims, refs)
	var m LookupMemo
	mv := s.MemoView(&m)
	defer mv.Close()
	addrs, ports := make([]netip.Addr, len(claims)), make([]uint16, len(claims))
	for i, c := range claims {
		addrs[i] = c.Addr
		if want, _ := s.uids.get(c.UID); refs[i] != Ref(want) && i*37%(warmMinAddrs+200) < warmMinAddrs+100 {
			t.Fatalf("claim %d: owner %d, want %d", i, refs[i], want)
		}
	}
	var w LookupWarmer
	chunk := func(c int) (int, int) { return min(c*warmChunk, len(addrs)), min((c+1)*warmChunk, len(addrs)) }
	for c := range 2 {
		lo, hi := chunk(c)
		mv.WarmStep(&w, c, addrs[lo:hi], ports[lo:hi], refs[lo:hi])
	}
	for c := 0; c*warmChunk < len(addrs); c++ {
		lo, hi := chunk(c + 2)
		mv.WarmStep(&w, c+2, addrs[lo:hi], ports[lo:hi], refs[lo:hi]) // chunk c is warm
		i := c * warmChunk
		for j := i; j < min(i+warmChunk, len(addrs)); j++ {
			at := t0.Add(90 * time.Second).UnixNano()
			sp := span{lo: math.MinInt64, hi: math.MaxInt64}
			if got, want := mv.Lookup(addrs[j], 0, at, true), s.lookup(addrs[j], 0, at, true, &sp); got != want {
				t.Fatalf("lookup of %s: %+v, want %+v", addrs[j], got, want)
			}
		}
	}
}

// briefOf is the Brief of an Answer.
func briefOf(a Answer) Brief {
	b := Brief{Ref: a.Ref, Code: a.Code}
	if a.Pending {
		b.Bits |= BriefPending
	}
	if a.Exporter {
		b.Bits |= BriefExporter
	}
	if a.Kind == flow.EndpointService {
		b.Bits |= BriefService
	}
	return b
}

// TestWarmStepAcrossWrites lets a write come between the warming pipeline's links: a
// compaction frees the entries the first link's slots lead to, and new claims take them for
// other addresses in new blocks (the block table moves: the old slots keep the old numbers).
// The later links must not hand the lookups those entries.
func TestWarmStepAcrossWrites(t *testing.T) {
	now := t0.Add(time.Hour)
	s, err := New(Config{Horizon: 10 * time.Minute, KubeLag: time.Second}, func() time.Time { return now }, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s.warmMin, s.claimWarmMin = 0, 0
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 4, byte(i >> 8), byte(i)}) }
	claim := func(i int, uid string, from, to time.Time) {
		_ = s.Observe(Claim{Addr: addr(i), Owner: pod("w-"+uid, uid), From: from, To: to, Source: SourceHeartbeat, Origin: "n"})
	}
	for i := range warmChunk {
		claim(i, fmt.Sprintf("old-%d", i), t0, t0.Add(time.Minute)) // gone after the compaction
	}
	addrs, ports := make([]netip.Addr, warmChunk), make([]uint16, warmChunk)
	for i := range addrs {
		addrs[i] = addr(i)
	}
	var m LookupMemo
	var w LookupWarmer
	v := s.MemoView(&m)
	v.WarmStep(&w, 0, addrs, ports, nil) // the first link: the addresses' slots
	v.Close()
	s.Compact(now)
	for i := range 300 { // the freed entries taken by other addresses, in new blocks: the block table grows
		claim(1024+16*i, fmt.Sprintf("new-%d", i), now.Add(-time.Minute), now)
	}
	for i := range warmChunk / 2 {
		claim(i, fmt.Sprintf("again-%d", i), now.Add(-time.Minute), now)
	}
	v = s.MemoView(&m)
	defer v.Close()
	v.WarmStep(&w, 1, nil, nil, nil)
	v.WarmStep(&w, 2, nil, nil, nil) // chunk 0 went through every link
	at := now.Add(-30 * time.Second).UnixNano()
	for _, a := range addrs {
		sp := span{lo: math.MinInt64, hi: math.MaxInt64}
		if got, want := v.Lookup(a, 0, at, true), s.lookup(a, 0, at, true, &sp); got != want {
			t.Fatalf("lookup of %s: %+v, want %+v", a, got, want)
		}
	}
}
