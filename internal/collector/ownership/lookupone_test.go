package ownership

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flowscope/flowscope/internal/flow"
)

// TestDecideOneAsScan: wherever decideOne decides, it answers as decideScan does and narrows
// the span alike; where it falls back, the scan after its pass answers as the scan alone, with
// a span within the scan's — over random ranges of one or two owners, every mix of sources,
// moments around each threshold, Kubernetes synced or not, final or not.
func TestDecideOneAsScan(t *testing.T) {
	s := newTestStore(t, Config{})
	bare := s.o.intern(Owner{Kind: flow.EndpointPod, PodUID: "0123abcd-4567-89ef-0123-456789abcdef"})
	rich := s.o.intern(Owner{Kind: flow.EndpointPod, PodUID: "0123abcd-4567-89ef-0123-456789abcdef", Namespace: "ns", Pod: "p"})
	other := s.o.intern(Owner{Kind: flow.EndpointPod, PodUID: "99999999-4567-89ef-0123-456789abcdef", Namespace: "ns", Pod: "q"})
	s.originSeen = []int64{0, 5e9, 9e9}
	srcs := []Source{SourceHeartbeat, SourceFlow, SourceHeartbeat | SourceFlow, SourceKubePod, SourceKubeEndpointSlice, SourceKubePod | SourceKubeEndpointSlice}
	rnd := rand.New(rand.NewPCG(1, 2))
	const sec = int64(1e9)
	decided, fellBack := 0, 0
	for range 200_000 {
		n := 1 + rnd.IntN(4)
		rs := make([]rng, 0, n)
		from := int64(rnd.IntN(3)) * sec
		first := []ownerID{bare, rich}[rnd.IntN(2)]
		for range n {
			to := from + int64(rnd.IntN(4))*sec + int64(rnd.IntN(3))*s.cfg.SkewTolerance.Nanoseconds()
			if rnd.IntN(4) == 0 {
				to = open
			}
			o := first
			switch rnd.IntN(8) {
			case 0:
				o = other
			case 1:
				o = bare + rich - first
			}
			rs = append(rs, rng{from: from, to: to, owner: o, src: srcs[rnd.IntN(len(srcs))], origin: uint16(rnd.IntN(3))})
			from += int64(rnd.IntN(3)) * sec
		}
		e := entryOf(rs)
		s.kubeEnabled = rnd.IntN(3) != 0
		s.kubeSynced = int64(rnd.IntN(20)) * sec
		final := rnd.IntN(2) == 0
		at := int64(rnd.IntN(10))*sec + int64(rnd.IntN(5)-2)*s.cfg.SkewTolerance.Nanoseconds()/2
		for _, memo := range []bool{false, true} {
			var one, scan *span
			if memo {
				one, scan = &span{math.MinInt64, math.MaxInt64}, &span{math.MinInt64, math.MaxInt64}
			}
			a, ok := s.decideOne(e, at, final, one)
			b := s.decideScan(e, at, final, scan)
			if !ok { // decide then scans after the pass: the same answer, a span within the scan's
				fellBack++
				if a = s.decideScan(e, at, final, one); a != b || (memo && (one.lo < scan.lo || one.hi > scan.hi)) {
					t.Fatalf("ranges %+v, at %d, final %v: after the pass %+v (span %v), the scan alone %+v (span %v)", rs, at, final, a, one, b, scan)
				}
				continue
			}
			decided++
			if a != b || (memo && *one != *scan) {
				t.Fatalf("ranges %+v, at %d, final %v, kube %v synced %d: decideOne %+v (span %v), decideScan %+v (span %v)",
					rs, at, final, s.kubeEnabled, s.kubeSynced, a, one, b, scan)
			}
		}
	}
	if decided < 100_000 || fellBack < 10_000 {
		t.Fatalf("decideOne decided %d and fell back %d times: the cases do not cover both", decided, fellBack)
	}
}

// entryOf returns an entry holding rs (ascending by start, as the store keeps them).
func entryOf(rs []rng) *entry {
	e := &entry{}
	p := append([]rng(nil), rs...)
	e.p, e.n, e.c = &p[0], uint32(len(p)), uint32(cap(p))
	return e
}
