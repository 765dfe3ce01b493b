package ownership

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
)

// The local ends of flow records are claims too: the socket's pod held the local address over
// the record. They come by the hundred thousand per second, nearly all inside ranges the pods'
// heartbeats made already, so they have a compact form and a fast path.

// ObserveLocal is Observe for the local ends of flows: for each pod claim i it also sets
// pods[i] (when pods is not nil) to the richest owner of the claim's pod UID found on the
// claimed address, or 0 — a Ref valid like a lookup's, which saves a Resolve by UID.
func (s *Store) ObserveLocal(claims []Claim, pods []Ref) error {
	s.lock()
	defer s.mu.Unlock()
	var errs []error
	for i := range claims {
		pod, err := s.observe(&claims[i])
		if err != nil {
			errs = append(errs, err)
		}
		if pods != nil {
			pods[i] = Ref(pod)
		}
	}
	return errors.Join(errs...)
}

// LocalPod is the local end of a flow record in a pod, in compact form: the pod (by UID) held
// Addr over [From, To] (Unix nanoseconds); ListenPort, for a server socket, is claimed instead
// when Addr turns out to be a node's (see Claim.ListenPort). Origin names the exporter.
type LocalPod struct {
	Addr       netip.Addr
	UID        string
	Origin     string
	From, To   int64
	ListenPort uint16
}

// ObservePods stores the local ends of flows in pods (SourceFlow claims) and sets refs[i] as
// ObserveLocal does. A claim inside a range of its pod only notes its source.
func (s *Store) ObservePods(pods []LocalPod, refs []Ref) error {
	s.lock()
	defer s.mu.Unlock()
	var errs []error
	if s.memo.epoch == 0 || s.memo.version+1 != s.version || s.memo.compactions != s.compactions {
		s.memo.reset(s.compactions) // someone else wrote since the last call: the memo may be stale
	}
	s.memo.hits, s.memo.covered, s.memo.stored, s.memo.off = 0, 0, 0, false
	defer func() {
		if s.memo.off {
			s.memo.reset(s.compactions) // its slots were not kept up to date
		}
		s.memo.version = s.version
	}()
	if s.ips.len() >= s.claimWarmMin {
		errs = s.observeWarmed(pods, refs, errs)
	} else {
		for i := range pods {
			errs = s.observeOne(pods, refs, i, nil, errs)
		}
	}
	s.m.claimN(SourceFlow, s.memo.hits+s.memo.covered+s.memo.stored)
	return errors.Join(errs...)
}

// observeWarmed is ObservePods' loop in a large store: the claims go through the warming
// pipeline a chunk at a time, and each uses the entry the pipeline found for it (unless a
// compaction ran since).
func (s *Store) observeWarmed(pods []LocalPod, refs []Ref, errs []error) []error {
	var p claimPipeline
	chunks := (len(pods) + warmChunk - 1) / warmChunk
	for c := 0; c < chunks+warmStages-1; c++ {
		w := s.step(&p, pods, c)
		if w == nil {
			continue
		}
		base := (c - (warmStages - 1)) * warmChunk
		fresh := w.at == s.compactions && w.moves == s.ips.blocks.moves // (a compaction may have freed the entries found)
		for i := range w.pods {
			var e *entry
			if fresh {
				e = w.es[i]
			}
			errs = s.observeOne(pods, refs, base+i, e, errs)
		}
	}
	return errs
}

// observeOne stores claim i, e its entry if known.
func (s *Store) observeOne(pods []LocalPod, refs []Ref, i int, e *entry, errs []error) []error {
	if i == s.memo.probe && s.memo.hits < s.memo.minHits {
		s.memo.off = true // it answers too few (the batch's addresses do not repeat): spare its cost
	}
	ref, err := s.observePod(&pods[i], e)
	if err != nil {
		errs = append(errs, err)
	}
	refs[i] = Ref(ref)
	return errs
}

// observePod stores one local claim; e is its address's entry when the caller found it
// (nil: look it up).
func (s *Store) observePod(p *LocalPod, e *entry) (ownerID, error) {
	if !p.Addr.IsValid() || p.UID == "" || p.From == 0 || p.To < p.From {
		s.m.rejected.WithLabelValues("invalid").Inc()
		return 0, fmt.Errorf("ownership: bad local claim for %s (pod %q, [%d, %d])", p.Addr, p.UID, p.From, p.To)
	}
	if p.To < s.floor {
		s.m.rejected.WithLabelValues("past-horizon").Inc()
		return 0, nil
	}
	a, v4 := addr4(p.Addr)
	m := &s.memo.spare // (IPv6 claims go without the memo)
	if !s.memo.off && v4 {
		m = s.memo.slot(a)
		if m.valid(&s.memo, a, p) { // a claim of this batch found this range of the pod: it covers this one too
			s.seen(p.Origin, p.To)
			s.memo.hits++
			return m.pod, nil
		}
	}
	if e == nil {
		e = s.ips.getAddr(p.Addr)
	}
	u := uidCmpOf(p.UID)
	var pod ownerID
	if e != nil {
		var x *rng
		if x, pod = s.coveredBy(e, &u, SourceFlow, p.From, p.To); x != nil {
			s.seen(p.Origin, p.To)
			s.memo.covered++
			if m != &s.memo.spare {
				*m = memoSlot{a: a, uid: p.UID, from: x.from, to: x.to, pod: pod, epoch: s.memo.epoch}
			}
			return pod, nil
		}
	}
	m.epoch = 0 // the claim changes the address's ranges
	id, err := s.storePod(p, e, &u, pod)
	if s.compactions != s.memo.compactions { // storing it compacted the store: every range may have changed
		s.memo.reset(s.compactions)
	}
	return id, err
}

// storePod stores a local claim no range of its pod covers, as observe stores the Claim of
// it (flowClaim): e is the address's entry (nil: none yet), u the UID prepared for
// comparisons, pod the richest owner of the UID among e's ranges (0: none). Most local
// claims of a live cluster come here — an exporter's heartbeat reports its pods up to when it
// was sent, the flows that ended since extend their pods' ranges — so it skips the general
// path's second and third parse of the UID (and, through internBare, the index's probe when
// the entry's owner of the UID is the index's).
func (s *Store) storePod(p *LocalPod, e *entry, u *uidRef, pod ownerID) (ownerID, error) {
	if e == nil {
		e = s.ips.create(keyOf(p.Addr))
	}
	if s.heldByNode(e) { // a host-network pod: the general path claims its listening port
		c := flowClaim(p)
		return s.observe(&c)
	}
	oi := s.seen(p.Origin, p.To)
	s.memo.stored++ // (counted with the call's other claims)
	h := s.internBare(u, pod)
	s.noteUID(h)
	return pod, s.mergeDefinite(e, rng{from: p.From, to: p.To, owner: h, src: SourceFlow, origin: oi})
}

// flowClaim is a local claim as a Claim.
func flowClaim(p *LocalPod) Claim {
	return Claim{Addr: p.Addr, Owner: Owner{Kind: flow.EndpointPod, PodUID: p.UID}, From: time.Unix(0, p.From), To: time.Unix(0, p.To),
		Source: SourceFlow, Origin: p.Origin, ListenPort: p.ListenPort}
}

// localMemo remembers, over ObservePods calls with no other write in between, the range each
// recent address's pod claim was found inside: the local ends of a batch repeat the same pods
// and addresses, and a claim inside a known range of its pod needs no look at the address's
// ranges. It is exact: definite ranges of one pod on an address never overlap (they are
// merged), so the range found is the only one covering the claim; a slot is dropped when its
// address's ranges change, and the whole memo when a compaction may have changed any or
// another write came between two calls. A call whose first probe claims it answered fewer
// than minHits of goes on without it (off), and drops it at the end.
type localMemo struct {
	slots       [memoSlots]memoSlot
	epoch       uint32 // slots of another epoch are empty
	compactions uint64 // Store.compactions when the epoch began
	version     uint64 // Store.version at the end of the last ObservePods call
	hits        int    // claims of the call the memo answered
	covered     int    // and claims found inside a range of their pod
	stored      int    // and claims storePod stored
	probe       int    // memoProbe (tests lower it)
	minHits     int
	off         bool
	spare       memoSlot // written instead of a slot while off
}

// memoProbe claims decide whether the memo pays in a call: at 100,000 pods, each record of a
// batch from another pod, it answered 2.6% of them and its slots cost ≈ 5% of the work.
const memoProbe = 512

// memoBits sizes the memo: 4,096 slots (230 KB), room for the addresses of a batch that
// gathers many nodes' records.
const (
	memoBits  = 12
	memoSlots = 1 << memoBits
)

type memoSlot struct {
	a        uint32 // the IPv4 address (addr4)
	uid      string
	from, to int64   // the pod's definite range on the address (its SourceFlow noted)
	pod      ownerID // the richest owner of the pod on the address
	epoch    uint32
}

func (l *localMemo) reset(compactions uint64) {
	if l.epoch++; l.epoch == 0 { // wrapped: clear, so no slot of an old epoch looks current
		clear(l.slots[:])
		l.epoch = 1
	}
	l.compactions = compactions
}

// addr4 returns an IPv4 (or IPv4-mapped) address's bytes read little endian, as the memo
// slots' hashes want them (see memoKey).
func addr4(addr netip.Addr) (uint32, bool) {
	if !addr.Is4() {
		if !addr.Is4In6() {
			return 0, false
		}
		addr = addr.Unmap()
	}
	b := addr.As4()
	return binary.LittleEndian.Uint32(b[:]), true
}

// v4Mix is mixed into an IPv4 address's memo key: what the IPv4-mapped prefix added to the
// hash of a 16-byte key, which the memos' slot hashes were measured with.
const v4Mix = 0xffff0000 * 31 & 0xffffffff

func (l *localMemo) slot(a uint32) *memoSlot {
	x := a ^ v4Mix
	return &l.slots[(x*0x9e3779b1)>>(32-memoBits)]
}

func (m *memoSlot) valid(l *localMemo, a uint32, p *LocalPod) bool {
	return m.epoch == l.epoch && m.a == a && m.from <= p.From && p.To <= m.to && m.uid == p.UID
}

// internDefinite interns the owner of an exporter claim: a pod's owner already known for its
// UID (Kubernetes names it) when that one says all the claim's owner says and more, so a
// pod's definite and Kubernetes ranges share one owner — half the owners, and lookups that
// compare ids instead of owners. Kubernetes claims keep their own owners: they are closed by
// owner (Close).
func (s *Store) internDefinite(o Owner) ownerID {
	if o == (Owner{Kind: flow.EndpointPod, PodUID: o.PodUID}) && o.PodUID != "" {
		u := uidCmpOf(o.PodUID) // (internBare takes the fingerprint the index needs)
		return s.internBare(&u, 0)
	}
	if o.Kind == flow.EndpointPod && o.PodUID != "" {
		if u, ok := s.uids.get(o.PodUID); ok && s.o.detail(u) > o.detail() && includes(s.o.get(u), o) {
			s.o.ref(u)
			return u
		}
	}
	return s.internOwner(o)
}

// internBare is internDefinite for the bare owner of a pod UID (u; known is an owner of it,
// 0 if none): the owner the UID index names for it when that one says more — it includes the
// bare owner, which names only the UID — else the bare owner. When the index names known,
// it is not probed.
func (s *Store) internBare(u *uidRef, known ownerID) ownerID {
	h, ok := known, known != 0 && s.o.meta(known).indexed()
	if !ok {
		r := *u
		if r.form != uidLong {
			r.uh = uidFingerprint(r.key, r.form, r.s) // (uidCmpOf takes it only for long UIDs)
		}
		h, ok = s.uids.getRef(&r)
	}
	if ok && s.o.detail(h) > 1 && s.o.meta(h).kind() == kindPod {
		s.o.ref(h)
		return h
	}
	return s.internOwner(Owner{Kind: flow.EndpointPod, PodUID: u.s})
}

// includes reports whether every field o names, full names the same.
func includes(full, o Owner) bool {
	f, p := shared(&full), shared(&o)
	for i := range p {
		if *p[i] != "" && *p[i] != *f[i] {
			return false
		}
	}
	return full.Kind == o.Kind && (o.Pod == "" || o.Pod == full.Pod) && (o.PodUID == "" || o.PodUID == full.PodUID)
}

// warmChunk is how many addresses a warm step covers. warmMinAddrs is the store size from
// which warming lookups pays (measured: at 1,000 addresses it costs ≈ 7%, at 100,000 it saves
// ≈ 25%; at 10,000 it still lost ≈ 10 ns a record), warmClaimMinAddrs the size from which
// warming claims does: a claim's chain (index slot, entry, its owners' UIDs) misses once the
// store outgrows the core's 1–2 MB L2 (≈ 8,000 addresses), which a lookup's memo and the
// records' own traffic hide longer (docs/benchmarks/attribution-log.md, "Claims warmed from 8,192
// addresses"). The owners a flush renders miss from that size too, and are warmed from it
// (View.Warmth; the log's "Rendered owners warmed from 8,192 addresses").
const (
	warmChunk         = 32
	warmMinAddrs      = 16 << 10
	warmClaimMinAddrs = 8 << 10
)
