package ownership

import (
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

// Lookup answers who held addr at t. port != 0 consults the host-network listeners on
// (addr, port) first; otherwise, and when none covers t, the address itself. final=false may
// answer Pending; final=true decides with what is known.
func (s *Store) Lookup(addr netip.Addr, port uint16, t time.Time, final bool) Result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	at := t.UnixNano()
	if at < s.floor {
		return Result{Reason: flow.ReasonStale}
	}
	k := keyOf(addr)
	if port != 0 && len(s.ports) > 0 {
		if e := s.ports[portKey{k, port}]; e != nil {
			if r := s.decide(e, at, final); r.Attributed() || r.Reason == flow.ReasonConflict {
				return r
			}
		}
	}
	e := s.ips[k]
	if e == nil || len(e.r) == 0 {
		return s.unclaimed(addr, at, final)
	}
	return s.decide(e, at, final)
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

// identities reports whether all candidates name one identity, and the richest of them.
func (c *candidates) identity(s *Store) (Owner, bool) {
	if c.overflow || c.n == 0 {
		return Owner{}, false
	}
	best := s.o.get(c.h[0])
	if c.n == 1 {
		return best, true
	}
	for i := 1; i < c.n; i++ {
		o := s.o.get(c.h[i])
		if !SameIdentity(best, o) {
			return Owner{}, false
		}
		if o.detail() > best.detail() {
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

func (s *Store) scanEntry(e *entry, at int64) scan {
	skew := int64(s.cfg.SkewTolerance)
	var sc scan
	sc.lastTo = -1 << 63
	for i := range e.r {
		x := &e.r[i]
		if x.from-skew > at {
			sc.later = true
			break
		}
		if x.src.Definite() {
			sc.hasDef = true
			if x.to > sc.lastTo {
				sc.lastTo, sc.lastOrig = x.to, x.origin
			}
			if at <= x.to+skew {
				sc.near.add(x.owner, x.src)
				if x.from+skew <= at && at <= x.to-skew {
					sc.covering.add(x.owner, x.src)
				}
			}
			continue
		}
		if x.to == open || at <= x.to+skew {
			sc.possible.add(x.owner, x.src)
		}
	}
	return sc
}

func (s *Store) kubeDone(at int64) bool {
	return !s.kubeEnabled || s.kubeSynced >= at+int64(s.cfg.KubeLag)
}

func (s *Store) decide(e *entry, at int64, final bool) Result {
	if at < e.floor {
		return Result{Reason: flow.ReasonGap}
	}
	sc := s.scanEntry(e, at)
	kubeDone := s.kubeDone(at)
	if sc.covering.n > 0 {
		owner, ok := sc.near.identity(s)
		if !ok {
			return Result{Reason: flow.ReasonConflict}
		}
		chosen := sc.covering.h[0]
		if s.kubeEnabled && !kubeDone && !final {
			return Result{Pending: true}
		}
		src := sc.covering.src
		if kubeDone && sc.possible.n > 0 {
			matched := false
			for i := 0; i < sc.possible.n; i++ {
				if sc.possible.h[i] == chosen {
					matched = true
					src |= sc.possible.src
					continue
				}
				if p := s.o.get(sc.possible.h[i]); SameIdentity(owner, p) {
					matched = true
					src |= sc.possible.src
					if p.detail() > owner.detail() {
						owner = p
					}
				}
			}
			if !matched {
				return Result{Reason: flow.ReasonConflict}
			}
		}
		return Result{Owner: s.enrich(owner), Source: src, Exporter: true}
	}
	if sc.hasDef && !final {
		return Result{Pending: true} // an exporter reports this address: its late heartbeat may still cover the moment
	}
	if sc.possible.n > 0 {
		if !kubeDone {
			if !final {
				return Result{Pending: true}
			}
			return Result{Reason: flow.ReasonStale}
		}
		if owner, ok := sc.possible.identity(s); ok {
			return Result{Owner: s.enrich(owner), Source: sc.possible.src}
		}
		return Result{Reason: flow.ReasonGap} // a handover whose moment Kubernetes cannot place
	}
	if sc.hasDef && !sc.later && sc.lastTo < at && s.originSeen[sc.lastOrig] < at {
		return Result{Reason: flow.ReasonStale} // the exporter went silent before the moment
	}
	return Result{Reason: flow.ReasonGap}
}

// enrich replaces a pod owner by the richest owner known for its UID, and fills its zone.
func (s *Store) enrich(o Owner) Owner {
	if o.Kind != flow.EndpointPod || o.PodUID == "" || o.Workload != "" {
		return s.withZone(o) // not a pod, or named by Kubernetes already
	}
	if u, ok := s.uids[o.PodUID]; ok {
		if r := s.o.get(u); r.detail() > o.detail() {
			return s.withZone(r)
		}
	}
	return s.withZone(o)
}

// unclaimed answers for an address no source has claimed within the horizon.
func (s *Store) unclaimed(addr netip.Addr, at int64, final bool) Result {
	inCluster := false
	for _, p := range s.cfg.ClusterNetworks {
		if p.Contains(addr) {
			inCluster = true
			break
		}
	}
	if !inCluster && s.networks != nil {
		if name, ok := s.networks.Lookup(addr); ok {
			return Result{Owner: Owner{Kind: flow.EndpointNetwork, Network: name}, Source: SourceCIDR}
		}
	}
	if !inCluster && len(s.cfg.ClusterNetworks) == 0 {
		inCluster = privateAddr(addr)
	}
	if !inCluster {
		return Result{Reason: flow.ReasonExternal}
	}
	if !final {
		return Result{Pending: true} // a new owner's first heartbeat or event may still come
	}
	return Result{Reason: flow.ReasonNoOwner}
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
	for _, x := range e.r {
		if kinds[s.o.recs[x.owner].key.kind] == flow.EndpointNode {
			return true
		}
	}
	return false
}
