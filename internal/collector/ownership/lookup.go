package ownership

import (
	"math"
	"net/netip"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
)

// Result answers a lookup: an owner, or the reason there is none, or Pending when the answer
// may still change as delayed ownership data arrives.
type Result struct {
	Owner  Owner
	Source Source      // sources of the ranges the answer rests on
	Reason flow.Reason // set when the address could not be attributed
	// Pending: not decidable yet (an exporter's or Kubernetes' data for that moment may still
	// arrive). Ask again later; a final lookup never returns Pending.
	Pending bool
	// Exporter: an exporter claimed the owner, so the owner's side of a connection is observed.
	Exporter bool
}

// Attributed reports whether r names an owner.
func (r Result) Attributed() bool { return !r.Pending && r.Reason == "" }

// maxCandidates bounds the distinct owners one lookup collects; more means a conflict anyway.
const maxCandidates = 4

// Ref names an interned owner, as View lookups return it: it keeps rendering the same owner
// for at least the time set by Store.HoldRefs, however the store changes meanwhile.
type Ref uint32

// Answer is a lookup's answer in compact form: the owner as a Ref (render it with a View).
type Answer struct {
	Ref      Ref
	Kind     flow.EndpointKind // the owner's kind (empty when not attributed)
	Source   Source
	Reason   flow.Reason
	Code     ReasonCode // Reason as a number, for callers that keep answers compactly
	Pending  bool
	Exporter bool
}

// Attributed reports whether a names an owner.
func (a Answer) Attributed() bool { return !a.Pending && a.Reason == "" }

// Brief is a lookup's answer in three scalars, what a caller that keeps answers compactly
// needs of an Answer (View.LookupBrief): it is returned in registers and kept without a copy
// through memory, where an Answer's nine fields are spilled and copied (a store-forwarding
// stall per lookup).
type Brief struct {
	Ref  Ref
	Code ReasonCode // 0: attributed (unless pending)
	Bits uint8      // BriefPending, BriefExporter, BriefService
}

// Brief.Bits.
const (
	BriefPending  = ansPending  // Answer.Pending
	BriefExporter = ansExporter // Answer.Exporter
	BriefService  = 1 << 2      // attributed to a Service (Answer.Kind)
)

// brief renders a compact answer whose owner is of kind (an index in kinds).
func (a ans) brief(kind uint8) Brief {
	b := Brief{Ref: Ref(a.ref), Code: ReasonCode(a.reason), Bits: a.bits & (ansPending | ansExporter)}
	if kind == kindService {
		b.Bits |= BriefService
	}
	return b
}

// ReasonCode numbers the reasons lookups answer with (0: none; the store's fixed vocabulary).
type ReasonCode uint8

// Reason returns the reason c numbers.
func (c ReasonCode) Reason() flow.Reason { return reasons[c] }

// Lookup answers who held addr at t. port != 0 consults the host-network listeners on
// (addr, port) first; otherwise, and when none covers t, the address itself. final=false may
// answer Pending; final=true decides with what is known.
func (s *Store) Lookup(addr netip.Addr, port uint16, t time.Time, final bool) Result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.lookup(addr, port, t.UnixNano(), final, nil)
	r := Result{Source: a.Source, Reason: a.Reason, Pending: a.Pending, Exporter: a.Exporter}
	if a.Ref != 0 {
		r.Owner = s.withZone(s.o.get(ownerID(a.Ref)))
	}
	return r
}

// span is the interval of moments [lo, hi] over which a lookup's answer stays the same: each
// comparison of the moment with a threshold narrows it to the side the moment is on. Within
// one View the store does not change, so an answer holds for any moment of its span. A
// lookup whose answer is not memoized passes a nil span: its comparisons narrow nothing.
type span struct{ lo, hi int64 }

// below narrows sp (unless nil) by the comparison at < t, and returns it.
func (sp *span) below(at, t int64) bool {
	if at < t {
		if sp != nil {
			sp.hi = min(sp.hi, t-1)
		}
		return true
	}
	if sp != nil {
		sp.lo = max(sp.lo, t)
	}
	return false
}

// atMost narrows sp by the comparison at <= t, and returns it.
func (sp *span) atMost(at, t int64) bool {
	if t == math.MaxInt64 {
		return true
	}
	return sp.below(at, t+1)
}

// lookup answers who held addr at `at`, narrowing sp (which starts as the whole line) to the
// moments with the same answer.
func (s *Store) lookup(addr netip.Addr, port uint16, at int64, final bool, sp *span) Answer {
	return s.answerOf(s.lookupEntry(addr, port, at, final, sp, nil))
}

// ans is an Answer in compact form, for the store's own use: four small fields, which the
// compiler passes in registers (an Answer goes through memory at every return).
type ans struct {
	ref    ownerID
	src    Source
	reason uint8 // index in reasons
	bits   uint8 // ansPending, ansExporter
}

const (
	ansPending = 1 << iota
	ansExporter
)

// Indexes in reasons.
const (
	rNone = iota
	rNoOwner
	rGap
	rConflict
	rStale
	rExternal
)

func (a ans) attributed() bool { return a.bits&ansPending == 0 && a.reason == rNone }

// answerOf renders a compact answer.
func (s *Store) answerOf(a ans) Answer {
	a, kind := s.withKind(a)
	return a.render(kind)
}

// withKind returns a compact answer with its owner's kind (an index in kinds; 0 for none).
func (s *Store) withKind(a ans) (ans, uint8) {
	if a.ref == 0 {
		return a, 0
	}
	return a, s.o.meta(a.ref).kind()
}

// render renders a compact answer whose owner is of kind (an index in kinds).
func (a ans) render(kind uint8) Answer {
	return Answer{Ref: Ref(a.ref), Kind: kinds[kind], Source: a.src, Reason: reasons[a.reason], Code: ReasonCode(a.reason),
		Pending: a.bits&ansPending != 0, Exporter: a.bits&ansExporter != 0}
}

// lookupEntry is lookup with addr's entry when the caller found it (nil: look it up).
func (s *Store) lookupEntry(addr netip.Addr, port uint16, at int64, final bool, sp *span, e *entry) ans {
	if sp.below(at, s.floor) {
		return ans{reason: rStale}
	}
	if port != 0 && len(s.ports) > 0 {
		if e := s.ports[portKey{keyOf(addr), port}]; e != nil {
			if r := s.decide(e, at, final, sp); r.attributed() || r.reason == rConflict {
				return r
			}
		}
	}
	if e == nil {
		e = s.ips.getAddr(addr)
	}
	if e == nil || e.n == 0 {
		return s.unclaimed(addr, final)
	}
	return s.decide(e, at, final, sp)
}

// candidates collects distinct owners (by handle) up to maxCandidates.
type candidates struct {
	h        [maxCandidates]ownerID
	src      Source
	n        int
	overflow bool
}

func (c *candidates) add(h ownerID, src Source) {
	c.src |= src
	for i := 0; i < c.n; i++ {
		if c.h[i] == h {
			return
		}
	}
	if c.n == maxCandidates {
		c.overflow = true
		return
	}
	c.h[c.n] = h
	c.n++
}

// identity reports whether all candidates name one identity, and the richest of them.
func (c *candidates) identity(s *Store) (ownerID, bool) {
	if c.overflow || c.n == 0 {
		return 0, false
	}
	best := c.h[0]
	for i := 1; i < c.n; i++ {
		o := c.h[i]
		if !s.o.same(best, o) {
			return 0, false
		}
		if s.o.detail(o) > s.o.detail(best) {
			best = o
		}
	}
	return best, true
}

// scan is what the ranges of one key say about one moment.
type scan struct {
	covering candidates // definite ranges that cover the moment (shrunk by the skew)
	near     candidates // definite ranges within the skew of the moment
	possible candidates // Kubernetes ranges that may cover the moment (widened by the skew)
	hasDef   bool
	later    bool  // a range starts after the moment
	lastTo   int64 // latest end of a definite range
	lastOrig uint16
}

// scanEntry fills sc (zero) with what e's ranges say about moment at.
func (s *Store) scanEntry(e *entry, at int64, sp *span, sc *scan) {
	skew := int64(s.cfg.SkewTolerance)
	sc.lastTo = -1 << 63
	rs := e.rs()
	for i := range rs {
		x := &rs[i]
		if sp.below(at, x.from-skew) { // x.from-skew > at
			sc.later = true
			break
		}
		if x.src.Definite() {
			sc.hasDef = true
			if x.to > sc.lastTo {
				sc.lastTo, sc.lastOrig = x.to, x.origin
			}
			if sp.atMost(at, x.to+skew) {
				sc.near.add(x.owner, x.src)
				if !sp.below(at, x.from+skew) && sp.atMost(at, x.to-skew) {
					sc.covering.add(x.owner, x.src)
				}
			}
			continue
		}
		if x.to == open || sp.atMost(at, x.to+skew) {
			sc.possible.add(x.owner, x.src)
		}
	}
}

func (s *Store) kubeDone(at int64, sp *span) bool {
	return !s.kubeEnabled || sp.atMost(at, s.kubeSynced-int64(s.cfg.KubeLag))
}

func (s *Store) answer(id ownerID, src Source, exporter bool) ans {
	a := ans{ref: s.enrich(id), src: src}
	if exporter {
		a.bits = ansExporter
	}
	return a
}

func (s *Store) decide(e *entry, at int64, final bool, sp *span) ans {
	if sp.below(at, e.floorAt()) {
		return ans{reason: rGap}
	}
	if a, ok := s.decideOne(e, at, final, sp); ok {
		return a
	}
	return s.decideScan(e, at, final, sp)
}

// decideScan is decide past the floor, for any ranges.
func (s *Store) decideScan(e *entry, at int64, final bool, sp *span) ans {
	var sc scan
	s.scanEntry(e, at, sp, &sc)
	kubeDone := s.kubeDone(at, sp)
	if sc.covering.n > 0 {
		owner, ok := sc.near.identity(s)
		if !ok {
			return ans{reason: rConflict}
		}
		chosen := sc.covering.h[0]
		if s.kubeEnabled && !kubeDone && !final {
			return ans{bits: ansPending}
		}
		src := sc.covering.src
		if kubeDone && sc.possible.n > 0 {
			matched := false
			for _, p := range sc.possible.h[:sc.possible.n] {
				if p == chosen {
					matched = true
					src |= sc.possible.src
					continue
				}
				if s.o.same(owner, p) {
					matched = true
					src |= sc.possible.src
					if s.o.detail(p) > s.o.detail(owner) {
						owner = p
					}
				}
			}
			if !matched {
				return ans{reason: rConflict}
			}
		}
		return s.answer(owner, src, true)
	}
	if sc.hasDef && !final {
		return ans{bits: ansPending} // an exporter reports this address: its late heartbeat may still cover the moment
	}
	if sc.possible.n > 0 {
		if !kubeDone {
			if !final {
				return ans{bits: ansPending}
			}
			return ans{reason: rStale}
		}
		if owner, ok := sc.possible.identity(s); ok {
			return s.answer(owner, sc.possible.src, false)
		}
		return ans{reason: rGap} // a handover whose moment Kubernetes cannot place
	}
	if sc.hasDef && !sc.later && !sp.atMost(at, sc.lastTo) && !sp.atMost(at, s.originSeen[sc.lastOrig]) {
		return ans{reason: rStale} // the exporter went silent before the moment
	}
	return ans{reason: rGap}
}

// enrich replaces a pod owner not named by Kubernetes by the richest owner known for its UID.
func (s *Store) enrich(id ownerID) ownerID {
	if m := s.o.meta(id); m.kind() != kindPod || m.uh() == 0 || m.named() {
		return id
	}
	r := s.o.uidRef(id)
	if u, ok := s.uids.getRef(&r); ok && s.o.detail(u) > s.o.detail(id) {
		return u
	}
	return id
}

// unclaimed answers for an address no source has claimed within the horizon.
func (s *Store) unclaimed(addr netip.Addr, final bool) ans {
	inCluster := false
	for _, p := range s.cfg.ClusterNetworks {
		if p.Contains(addr) {
			inCluster = true
			break
		}
	}
	if !inCluster && s.networks != nil {
		if name, ok := s.networks.Lookup(addr); ok {
			if id := s.netRefs[name]; id != 0 {
				return ans{ref: id, src: SourceCIDR}
			}
		}
	}
	if !inCluster && len(s.cfg.ClusterNetworks) == 0 {
		inCluster = privateAddr(addr)
	}
	if !inCluster {
		return ans{reason: rExternal}
	}
	if !final {
		return ans{bits: ansPending} // a new owner's first heartbeat or event may still come
	}
	return ans{reason: rNoOwner}
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func privateAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || cgnat.Contains(a)
}

// ReadyAt is the earliest collector time at which a lookup for moment t can be decided without
// waiting for Kubernetes (t+KubeLag when a Kubernetes source feeds the store).
func (s *Store) ReadyAt(t time.Time) time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.kubeEnabled {
		return t
	}
	return t.Add(s.cfg.KubeLag)
}

// heldByNode reports whether a node claims the address of e (a host-network address).
func (s *Store) heldByNode(e *entry) bool {
	for _, x := range e.rs() {
		if s.o.meta(x.owner).kind() == kindNode {
			return true
		}
	}
	return false
}
