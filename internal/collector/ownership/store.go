package ownership

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/flow"
)

// Config bounds the store and states the tolerances it applies.
type Config struct {
	// Horizon: ranges that ended longer ago than this are compacted away, and lookups for
	// moments older than now-Horizon answer stale. Must exceed the attribution holding window.
	Horizon time.Duration
	// MaxRanges bounds the ranges kept in total; when full, compaction runs early and then new
	// ranges are rejected (counted): flows needing them end unattributed, never misattributed.
	MaxRanges int
	// MaxRangesPerKey bounds the ranges of one address (or address and port); beyond it the
	// oldest is evicted (counted) and lookups before the evicted range's end answer gap.
	MaxRangesPerKey int
	// SkewTolerance is the clock skew between nodes (and the collector) that lookups tolerate:
	// an exporter's range proves ownership only SkewTolerance inside its ends, and another
	// owner's range within SkewTolerance of a moment makes that moment a conflict.
	SkewTolerance time.Duration
	// KubeLag is how late Kubernetes events may reach the collector: the Kubernetes view of a
	// moment t is complete once the informers were in sync at t+KubeLag.
	KubeLag time.Duration
	// ClusterNetworks are the pod, Service and node networks: an address inside them that no
	// source ever claimed is no-owner (and never matched against the named networks); outside
	// them it is looked up in the named networks, else external. Empty: private and
	// link-local addresses are treated as cluster networks.
	ClusterNetworks []netip.Prefix
}

// DefaultConfig returns the defaults: 15 min horizon, 4M ranges (≈ 600 MB at worst), 64
// ranges per key, 250 ms skew, 10 s Kubernetes lag.
func DefaultConfig() Config {
	return Config{
		Horizon:         15 * time.Minute,
		MaxRanges:       4 << 20,
		MaxRangesPerKey: 64,
		SkewTolerance:   250 * time.Millisecond,
		KubeLag:         10 * time.Second,
	}
}

const open = math.MaxInt64

// rng is one ownership range [from, to] in Unix nanoseconds; to == open while a Kubernetes
// object still holds the address. 24 bytes (two in the first line of an entry).
type rng struct {
	from, to int64
	owner    ownerID
	src      Source
	origin   uint16 // exporter that last extended a definite range (index into Store.origins)
}

type ipKey [16]byte

type portKey struct {
	ip   ipKey
	port uint16
}

func keyOf(a netip.Addr) ipKey { return a.Unmap().As16() }

// Store is the ownership store. It is safe for concurrent use.
type Store struct {
	cfg Config
	now func() time.Time

	mu           sync.RWMutex
	ips          addrMap
	ports        map[portKey]*entry
	n            int                      // ranges held
	originIdx    map[string]uint16        // exporter id → index
	originSeen   []int64                  // per origin: latest To claimed (its horizon)
	origins      *[originSlots]originSlot // origin names seen lately, by where their bytes are
	kubeEnabled  bool                     // a Kubernetes source feeds the store
	kubeSynced   int64                    // the Kubernetes view is complete up to here
	floor        int64                    // compaction horizon: nothing older is known
	uids         uidIndex                 // pod UID → richest owner seen (holding a reference)
	networks     *Networks
	netRefs      map[string]ownerID // named network → its interned owner (one reference each)
	o            owners             // interned owners, referenced by ranges and UID entries
	compactions  uint64             // compactions run (they change any address's ranges)
	version      uint64             // write locks taken: a LookupMemo's answers hold while it is unchanged
	memo         localMemo          // ObservePods' scratch
	warmMin      int                // lookups warm from this many addresses on (warmMinAddrs; tests lower it)
	claimWarmMin int                // claims warm from this many on (warmClaimMinAddrs; tests lower it)

	m metrics
}

// lock takes the write lock: the store may change.
func (s *Store) lock() {
	s.mu.Lock()
	s.version++
}

// ErrFull is returned when a range cannot be stored because the store is at MaxRanges.
var ErrFull = errors.New("ownership store full")

// New returns an empty store. now is the collector's clock; reg receives the store's metrics.
func New(cfg Config, now func() time.Time, reg prometheus.Registerer) (*Store, error) {
	d := DefaultConfig()
	if cfg.Horizon <= 0 {
		cfg.Horizon = d.Horizon
	}
	if cfg.MaxRanges <= 0 {
		cfg.MaxRanges = d.MaxRanges
	}
	if cfg.MaxRangesPerKey <= 0 {
		cfg.MaxRangesPerKey = d.MaxRangesPerKey
	}
	if cfg.SkewTolerance < 0 || cfg.KubeLag < 0 {
		return nil, fmt.Errorf("ownership: negative skew tolerance or Kubernetes lag")
	}
	s := &Store{
		cfg:          cfg,
		now:          now,
		ips:          newAddrMap(),
		ports:        map[portKey]*entry{},
		originIdx:    map[string]uint16{"": 0},
		o:            newOwners(),
		warmMin:      warmMinAddrs,
		claimWarmMin: warmClaimMinAddrs,
	}
	s.memo.probe, s.memo.minHits = memoProbe, memoProbe/16
	s.originSeen = []int64{0}
	s.o.clock = func() int64 { return s.now().UnixNano() }
	s.uids.o = &s.o
	if err := s.m.register(reg, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Claim is one statement of ownership: Owner held Addr (and, for a host-network listener,
// Port) from From to To. Exporter claims (SourceHeartbeat, SourceFlow) are definite over
// [From, To]; Origin names the exporter.
type Claim struct {
	Addr   netip.Addr
	Port   uint16
	Owner  Owner
	From   time.Time
	To     time.Time
	Source Source
	Origin string
	// ListenPort: for a pod's claim on an address a node claims (a host-network pod whose
	// exporter could not tell), claim (Addr, ListenPort) instead — a listening socket — or
	// nothing when zero. Never the node's address itself.
	ListenPort uint16
}

// Observe stores definite exporter claims. Bad claims are rejected with an error and change
// nothing; the others are applied.
func (s *Store) Observe(claims ...Claim) error { return s.ObserveLocal(claims, nil) }

// observe applies one claim; for a pod claim it returns the richest owner of the pod's UID
// on the claimed entry (0 when unknown).
func (s *Store) observe(c *Claim) (ownerID, error) {
	if err := validate(c); err != nil {
		s.m.rejected.WithLabelValues("invalid").Inc()
		return 0, err
	}
	if !c.Source.Definite() {
		s.m.rejected.WithLabelValues("invalid").Inc()
		return 0, fmt.Errorf("ownership: claim for %s from source %s: only exporter sources are definite", c.Addr, c.Source)
	}
	from, to := c.From.UnixNano(), c.To.UnixNano()
	if to < s.floor {
		s.m.rejected.WithLabelValues("past-horizon").Inc()
		return 0, nil
	}
	oi := s.seen(c.Origin, to)
	s.m.claim(c.Source)
	e := s.entryFor(c.Addr, c.Port, true)
	by, pod := s.covered(e, c, from, to)
	if by != nil {
		return pod, nil
	}
	if c.Port == 0 && c.Owner.Kind == flow.EndpointPod && s.heldByNode(e) {
		if c.ListenPort == 0 {
			return 0, nil
		}
		e = s.entryFor(c.Addr, c.ListenPort, true)
	}
	h := s.internDefinite(c.Owner)
	s.noteUID(h)
	return pod, s.mergeDefinite(e, rng{from: from, to: to, owner: h, src: c.Source, origin: oi})
}

// covered returns (and notes the source in) the range that makes a pod's claim add nothing,
// if any: a definite range of the same pod that covers it — the common case of a flow's local
// end inside heartbeats. It also returns the richest owner of the pod's UID among the entry's
// ranges (0 if none). The range is e's: valid until e changes.
func (s *Store) covered(e *entry, c *Claim, from, to int64) (*rng, ownerID) {
	if c.Owner.Kind != flow.EndpointPod || c.Owner.PodUID == "" {
		return nil, 0
	}
	u := uidCmpOf(c.Owner.PodUID)
	return s.coveredBy(e, &u, c.Source, from, to)
}

// coveredBy is covered for the pod of UID u (compared only: see uidCmpOf).
func (s *Store) coveredBy(e *entry, u *uidRef, src Source, from, to int64) (by *rng, best ownerID) {
	rs := e.rs()
	for i := range rs {
		x := &rs[i]
		if !s.o.uidIs(x.owner, u) {
			continue
		}
		if best == 0 || s.o.detail(x.owner) > s.o.detail(best) {
			best = x.owner
		}
		if by == nil && x.src.Definite() && x.from <= from && to <= x.to {
			if x.src&src != src { // (a line written only when it changes: most claims repeat)
				x.src |= src
			}
			by = x
		}
	}
	return by, best
}

func validate(c *Claim) error {
	switch {
	case !c.Addr.IsValid():
		return fmt.Errorf("ownership: claim without an address")
	case c.From.IsZero() || c.To.IsZero() || c.To.Before(c.From):
		return fmt.Errorf("ownership: claim for %s has a bad time range [%s, %s]", c.Addr, c.From, c.To)
	case c.Owner.Kind == "":
		return fmt.Errorf("ownership: claim for %s has no owner kind", c.Addr)
	}
	return nil
}

// mergeDefinite adds r to e, merging it with every overlapping definite range of the same
// identity (keeping the richer owner), so that flows and heartbeats of one pod share a range.
func (s *Store) mergeDefinite(e *entry, r rng) error {
	rs := e.rs()
	n := 0 // ranges kept, moved down over the merged ones
	for i := range rs {
		x := &rs[i]
		if x.src.Definite() && x.from <= r.to && r.from <= x.to && s.same(x.owner, r.owner) {
			r.from = min(r.from, x.from)
			if x.to > r.to {
				r.to, r.origin = x.to, x.origin
			}
			if x.owner != r.owner && s.o.detail(x.owner) > s.o.detail(r.owner) {
				s.o.ref(x.owner)
				s.o.unref(r.owner)
				r.owner = x.owner
			}
			r.src |= x.src
			s.o.unref(x.owner)
			s.n--
			continue
		}
		if n != i { // (a range kept in place is not written again)
			rs[n] = *x
		}
		n++
	}
	e.set(rs[:n])
	return s.insert(e, r)
}

// same reports whether two interned owners name one identity.
func (s *Store) same(a, b ownerID) bool {
	return a == b || SameIdentity(s.o.get(a), s.o.get(b))
}

// insert adds r keeping e.rs() ascending by from, within the bounds; r's owner reference passes
// to the store (or is dropped when r cannot be stored).
func (s *Store) insert(e *entry, r rng) error {
	if s.n >= s.cfg.MaxRanges {
		s.compactLocked(s.now())
		if s.n >= s.cfg.MaxRanges {
			s.m.rejected.WithLabelValues("full").Inc()
			s.o.unref(r.owner)
			return ErrFull
		}
	}
	if int(e.n) >= s.cfg.MaxRangesPerKey {
		s.evictOldest(e)
	}
	rs := e.rs()
	i := len(rs)
	for i > 0 && rs[i-1].from > r.from {
		i--
	}
	rs = append(rs, rng{})
	copy(rs[i+1:], rs[i:])
	rs[i] = r
	e.set(rs)
	s.n++
	return nil
}

// evictOldest drops a range of e: the oldest that only the local ends of flows made, if any
// (losing a definite range only loses coverage), else the range that ended first, raising
// e.floor past it so that no lookup can be answered without it.
func (s *Store) evictOldest(e *entry) {
	oldest, flowOnly := -1, false
	rs := e.rs()
	for i, x := range rs {
		fo := x.src == SourceFlow
		switch {
		case oldest < 0, fo && !flowOnly, fo == flowOnly && x.to < rs[oldest].to:
			oldest, flowOnly = i, fo
		}
	}
	if t := rs[oldest].to; !flowOnly && t > e.floorAt() {
		e.setFloor(t)
	}
	s.o.unref(rs[oldest].owner)
	e.set(append(rs[:oldest], rs[oldest+1:]...))
	s.n--
	s.m.evicted.Inc()
}

func (s *Store) entryFor(a netip.Addr, port uint16, create bool) *entry {
	k := keyOf(a)
	if port != 0 {
		pk := portKey{k, port}
		e := s.ports[pk]
		if e == nil && create {
			e = newEntry()
			s.ports[pk] = e
		}
		return e
	}
	if create {
		return s.ips.create(k)
	}
	return s.ips.get(k)
}

// internOwner interns o, sharing the UID string of the pod's known owners: owners of one pod
// then hold the same string, which compares equal without reading its bytes.
func (s *Store) internOwner(o Owner) ownerID {
	if u, ok := s.uids.get(o.PodUID); ok {
		o.PodUID = s.o.uid(u)
	}
	return s.o.intern(o)
}

// noteUID remembers the richest owner seen for a pod UID (used to name the local ends of
// flows); the entry lives as long as some range references its owner (see compactLocked).
func (s *Store) noteUID(h ownerID) {
	if s.o.meta(h).indexed() {
		return // (the index names it already)
	}
	uid := s.o.uid(h)
	if s.o.meta(h).kind() != kindPod || uid == "" {
		return
	}
	u, ok := s.uids.get(uid)
	if ok && s.o.detail(h) <= s.o.detail(u) {
		return
	}
	s.o.ref(h)
	s.uids.set(h) // (before u's reference goes: the index reads its UID)
	if ok {
		s.o.unref(u)
	}
}

// Resolve returns the richest owner known for a pod UID.
func (s *Store) Resolve(uid string) (Owner, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.uids.get(uid)
	if !ok {
		return Owner{}, false
	}
	return s.withZone(s.o.get(u)), true
}

// Open records that a Kubernetes object holds an address from `from` on (a possible range,
// open until Close). Opening an owner that is already open for the key changes nothing.
func (s *Store) Open(c Claim) error {
	s.lock()
	defer s.mu.Unlock()
	if !c.Addr.IsValid() || c.Owner.Kind == "" || c.Source.Definite() || c.Source == 0 {
		s.m.rejected.WithLabelValues("invalid").Inc()
		return fmt.Errorf("ownership: bad Kubernetes claim for %s (owner kind %q, source %s)", c.Addr, c.Owner.Kind, c.Source)
	}
	s.kubeEnabled = true
	h := s.internOwner(c.Owner)
	s.noteUID(h)
	e := s.entryFor(c.Addr, c.Port, true)
	for _, x := range e.rs() {
		if x.owner == h && x.src == c.Source && x.to == open {
			s.o.unref(h)
			return nil
		}
	}
	s.m.claim(c.Source)
	return s.insert(e, rng{from: c.From.UnixNano(), to: open, owner: h, src: c.Source})
}

// Close ends the open range of owner for the key at `at` (when the release was observed).
func (s *Store) Close(addr netip.Addr, port uint16, owner Owner, src Source, at time.Time) {
	s.lock()
	defer s.mu.Unlock()
	e := s.entryFor(addr, port, false)
	if e == nil {
		return
	}
	h := s.o.find(owner)
	if h == 0 {
		return
	}
	rs := e.rs()
	for i := range rs {
		if x := &rs[i]; x.owner == h && x.src == src && x.to == open {
			x.to = max(at.UnixNano(), x.from)
		}
	}
}

// SetKubeSynced records that the Kubernetes informers were in sync at t: the Kubernetes view
// of every moment up to t-KubeLag is complete.
func (s *Store) SetKubeSynced(t time.Time) {
	s.lock()
	defer s.mu.Unlock()
	s.kubeEnabled = true
	if n := t.UnixNano(); n > s.kubeSynced {
		s.kubeSynced = n
	}
}

// SetNetworks installs the named networks (nil removes them).
func (s *Store) SetNetworks(n *Networks) {
	s.lock()
	defer s.mu.Unlock()
	old := s.netRefs
	s.networks, s.netRefs = n, nil
	if n != nil {
		names := n.names()
		s.netRefs = make(map[string]ownerID, len(names))
		for _, name := range names {
			s.netRefs[name] = s.o.intern(Owner{Kind: flow.EndpointNetwork, Network: name})
		}
	}
	for _, id := range old {
		s.o.unref(id)
	}
}

// HoldRefs makes the Refs that lookups return valid for at least d: an owner no range names
// any more is kept renderable that long before its id is reused. The holding window calls it
// with its own bound (a Ref is rendered at most that long after its lookup).
func (s *Store) HoldRefs(d time.Duration) {
	s.lock()
	defer s.mu.Unlock()
	s.o.hold = max(s.o.hold, int64(d))
}

// Compact drops ranges that ended before now-Horizon, and UIDs not seen since.
func (s *Store) Compact(now time.Time) {
	s.lock()
	defer s.mu.Unlock()
	s.compactLocked(now)
}

func (s *Store) compactLocked(now time.Time) {
	s.o.releaseQuarantined(now.UnixNano() - s.o.hold)
	cut := now.Add(-s.cfg.Horizon).UnixNano()
	if cut <= s.floor {
		return
	}
	s.floor = cut
	s.compactions++
	dropped := 0
	sweep := func(e *entry) bool {
		rs := e.rs()
		kept := rs[:0]
		for _, x := range rs {
			if x.to < cut {
				s.o.unref(x.owner)
				dropped++
				continue
			}
			kept = append(kept, x)
		}
		clear(rs[len(kept):])
		e.set(kept)
		e.fit()
		return len(kept) == 0
	}
	s.ips.sweep(sweep)
	for k, e := range s.ports {
		if sweep(e) {
			delete(s.ports, k)
		}
	}
	for _, u := range s.uids.all() {
		if s.o.hot[u].refs == 1 { // no range names this owner any more
			s.uids.del(s.o.uid(u))
			s.o.unref(u)
		}
	}
	s.n -= dropped
	s.m.compacted.Add(float64(dropped))
}

// Len returns the number of ranges held.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n
}

// Run compacts the store every interval (a minute if zero) until ctx ends.
func (s *Store) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.Compact(s.now())
		}
	}
}
