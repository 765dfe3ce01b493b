package attribute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
)

// Config sets the holding window and its bounds.
type Config struct {
	// Window is how long a record may wait for ownership covering its start (default 60 s).
	// It must stay below the ownership store's horizon.
	Window time.Duration
	// JoinWait is how long a decided record whose peer runs an exporter waits for the peer's
	// record of the same connection (default 30 s, at most Window).
	JoinWait time.Duration
	// MaxHeld bounds the records held (default 1,048,576). When full, the record due soonest
	// is decided at once with what is known (counted as holding_full), never dropped.
	MaxHeld int
	// JoinTolerance: the two sides' records of one connection start and end within it
	// (default 5 s; it covers clock skew, handshake and close times).
	JoinTolerance time.Duration
	// LongConn: a record spanning longer than this is attributed at its end, not its start
	// (default 5 min).
	LongConn time.Duration
	// Tick is how often Run flushes (default 1 s).
	Tick time.Duration
	// ProcessNames names a local end that is neither a pod, a container nor a systemd unit
	// (the root cgroup, flow.KindHost, or another cgroup, flow.KindCgroup) by its process
	// (Workload.Comm, as a host workload of kind "process") when the record names one, instead
	// of as the node itself or by cgroup path: for a machine without Kubernetes, where the
	// processes are the workloads (standalone).
	ProcessNames bool
}

func (c *Config) setDefaults() {
	if c.Window <= 0 {
		c.Window = time.Minute
	}
	if c.JoinWait <= 0 {
		c.JoinWait = 30 * time.Second
	}
	c.JoinWait = min(c.JoinWait, c.Window)
	if c.MaxHeld <= 0 {
		c.MaxHeld = 1 << 20
	}
	if c.JoinTolerance <= 0 {
		c.JoinTolerance = 5 * time.Second
	}
	if c.LongConn <= 0 {
		c.LongConn = 5 * time.Minute
	}
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
}

// held is one record in the holding window (recycled: see holding.go). Times are Unix
// nanoseconds.
type held struct {
	r kept
	heldState
}

// heldState is what the holding window knows of a held record besides the record itself.
type heldState struct {
	// added is when it entered, in Unix seconds rounded up (enteredAt; until 2106): its window
	// ends at Window after it, its wait for a peer at JoinWait after it. (Checks run at whole
	// seconds: a record is checked at the second its window ends either way.)
	added uint32
	gen   uint32
	// local is, until localDone, the local pod's owner as the record's own claim found it (0:
	// resolve by UID), then the local pod (when stLocalHost and stLocalNoOwner are unset): the
	// hint is not read once the local end is decided, so the two share one field.
	local ownership.Ref

	remote answer // the peer: for a client the server it reached, for a server the client

	backoff uint8   // checks that found it pending: the next waits min(2^(backoff-1) s, Window)
	state   heldBit // what is known of it: two bytes where nine bools took nine

	partner    *held
	sameClient *held // the next older held record of the same client address and port
}

// heldBit is a bit of heldState.state.
type heldBit uint16

const (
	stLocalHost    heldBit = 1 << iota // the local end is a host workload or the node (hostOwner)
	stLocalNoOwner                     // the local end is unattributed (flow.ReasonNoOwner)
	stLocalDone
	stRemoteDone
	stVIPDone
	stDecided
	stViaVIP  // joined to its partner through a Service address (verified once decided)
	stIndexed // in byClient (see link)
	stRides   // checked by its exact partner's wheel entry: none of its own (ride)
)

// is reports whether bit b is set (a test of the bits, as a bool's was).
func (s *heldState) is(b heldBit) bool { return s.state&b != 0 }

// markIf sets the bits of b if ok.
func (s *heldState) markIf(b heldBit, ok bool) {
	if ok {
		s.state |= b
	}
}

// localEnd is how a local end that is not a pod is decided: named by hostOwner (ok) or not.
func localEnd(ok bool) heldBit {
	if ok {
		return stLocalHost | stLocalDone
	}
	return stLocalNoOwner | stLocalDone
}

// The bits are written in assignments on the lines that wrote the bools they replace: the
// build's profile (default.pgo) finds its hot calls by their line in their function.

// Attributor holds records until they can be attributed, joins both ends and writes the
// connections to a Sink. Add may be called from any goroutine; Flush (or Run) from one.
type Attributor struct {
	cfg   Config
	store *ownership.Store
	sink  Sink
	now   func() time.Time
	log   *slog.Logger

	mu          sync.Mutex
	wheel       wheel
	cursor      int64       // next second Flush processes
	taking      []ref       // the entries of the slot a flush is taking that it has not checked yet
	later       []ref       // the entries a flush took that are due in a later round of their slot
	byClient    clientIndex // newest record of each client address and port (hash); older ones via sameClient
	held        int
	out         []flow.Conn
	vips        []flow.Endpoint // storage for Conn.VIP, in chunks handed to the sink
	keys        []byte          // storage for Conn.ConnKey, likewise
	free        []*held
	allocs      int                    // records taken since the last trim
	trimAt      int64                  // second of the next trim
	local       localClaims            // Add's buffer
	warmer      ownership.LookupWarmer // Flush's lookup warming
	lookupsWarm bool                   // the store's lookups warmed at the last flush (View.Warmth)
	memo        ownership.LookupMemo   // runDue's lookups, per View
	locs        locations              // the held records' time locations
	peers       peers                  // the held records' exporters and nodes
	nats        translations           // the translated held records' backends

	flushMu sync.Mutex  // one Flush at a time
	retry   []flow.Conn // a batch the sink failed to take
	spare   []flow.Conn // the batch the sink took last: storage for the next a.out
	outPeak int         // the largest batch since the last trim

	m metrics
}

// refHold is how long after a lookup its Ref may be rendered: a record is decided and
// emitted within its window; the margin covers flushes delayed by a slow sink.
func refHold(cfg Config) time.Duration { return 2*cfg.Window + time.Minute }

// New returns an Attributor reading ownership from store and writing to sink.
func New(cfg Config, store *ownership.Store, sink Sink, now func() time.Time, reg prometheus.Registerer, log *slog.Logger) (*Attributor, error) {
	if store == nil || sink == nil || now == nil {
		return nil, errors.New("attribute: store, sink and clock are required")
	}
	cfg.setDefaults()
	store.HoldRefs(refHold(cfg))
	a := &Attributor{
		cfg: cfg, store: store, sink: sink, now: now,
		log:    log.With("component", "attribute"),
		wheel:  newWheel(cfg.Window),
		cursor: now().Unix(),
	}
	if err := a.m.register(reg, a); err != nil {
		return nil, err
	}
	return a, nil
}

// Add takes records into the holding window. Invalid records are counted and reported in the
// returned error; the others are taken. Each record's local end is also an ownership claim.
func (a *Attributor) Add(ins ...Input) error {
	return a.add(len(ins), func(i int) (string, string, *flow.Record) { return ins[i].Exporter, ins[i].Node, &ins[i].Record })
}

// AddBatch is Add for one exporter's records as the ingest decoded them (no Input is built:
// the holding window keeps its compact form of each).
func (a *Attributor) AddBatch(exporter, node string, recs []flow.Record) error {
	return a.add(len(recs), func(i int) (string, string, *flow.Record) { return exporter, node, &recs[i] })
}

// add takes n records, the i-th from at(i).
func (a *Attributor) add(n int, at func(i int) (exporter, node string, r *flow.Record)) error {
	now := a.now()
	nowNs := now.UnixNano()
	lag := int64(a.store.ReadyAt(now).Sub(now)) // how long Kubernetes may take to speak about a moment
	var errs []error
	a.mu.Lock()
	defer a.mu.Unlock()
	taken := 0
	for i := range n {
		exporter, node, r := at(i)
		if err := validate(exporter, r); err != nil {
			a.m.rejected.Inc()
			errs = append(errs, err)
			continue
		}
		for a.held >= a.cfg.MaxHeld && a.forceSoonest() {
		}
		h := a.alloc()
		h.r.set(a.peers.take(exporter, node), node, r, a.cfg.ProcessNames, &a.locs, &a.nats)
		h.added, h.r.pair = uint32(ceilSec(nowNs)), a.peers.or(h.r.pair, exporter, node)
		a.local.add(h, r.LocalAddr, exporter, node)
		if len(a.local.pods) >= claimBatch && !a.lookupsWarm {
			a.local.observe(a.store)
		}
		a.link(h)
		a.held++
		taken++
		if due := a.dueAt(h, lag); h.partner == nil || !a.ride(h, due, lag) { // (a first record rides nothing)
			a.schedule(h, due)
		}
	}
	a.m.received.Add(float64(taken))
	a.m.flushCounts()        // connections the full policy wrote
	a.local.observe(a.store) // bounded by the store; a rejected claim only costs coverage
	if len(errs) > 0 {
		return fmt.Errorf("attribute: %d of %d records rejected: %w", len(errs), n, errors.Join(errs...))
	}
	return nil
}

// claimBatch is how many local pod claims Add gives the store at once while the store's
// lookups do not warm (View.Warmth): the claims' buffer and the records their answers go back
// to stay in the cache. Such a store may still warm its claims (from 8,192 addresses), then a
// batch at a time, which measured faster than not warming. A store whose lookups warm takes a
// whole Add's claims at once (its claims' pipeline then runs long).
const claimBatch = 256

// dueAt is when h is first checked (Unix nanoseconds): once Kubernetes may have spoken about
// the moment its remote end is attributed at (lag after it), not before h came, within its
// window.
func (a *Attributor) dueAt(h *held, lag int64) int64 {
	return min(max(lookupTime(&h.r, a.cfg.LongConn)+lag, h.enteredAt()), a.deadline(h))
}

// deadline is when h's holding window ends: it is decided with what is known.
func (a *Attributor) deadline(h *held) int64 { return h.enteredAt() + int64(a.cfg.Window) }

// enteredAt is when h entered the holding window, rounded up to a second (Unix nanoseconds).
func (h *held) enteredAt() int64 { return int64(h.added) * int64(time.Second) }

// schedule makes h due at the second that ends at or after `at` (Unix nanoseconds).
func (a *Attributor) schedule(h *held, at int64) {
	a.wheel.add(max(ceilSec(at), a.cursor), h)
}

// viewBatch is how many checks share one read lock of the store.
const viewBatch = 4096

// Flush decides every record due by now and writes the ready connections to the sink, in
// parts of writeChunk connections while there are more (see writePart).
func (a *Attributor) Flush(ctx context.Context) error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	now := a.now()
	a.mu.Lock()
	werr := a.runDue(ctx, now)
	a.m.flushCounts()
	out := a.out
	if len(a.retry) > 0 {
		out = append(a.retry, a.out...) // the retry buffer is ours alone
	}
	a.retry, a.out, a.vips = nil, a.spare[:0], nil // Add may fill a.out while the sink writes
	a.spare = nil
	a.mu.Unlock()
	if len(out) == 0 { // (a failed part is in out: werr is nil)
		a.spare = out
		return nil
	}
	err := werr // a part of this flush failed: the rest waits with it for the next flush
	if err == nil {
		if err = a.sink.Write(ctx, out); err != nil {
			a.m.sinkErrors.Inc()
		}
	}
	if err != nil {
		if len(out) <= a.cfg.MaxHeld {
			a.retry = out
		} else {
			a.m.sinkDropped.Add(float64(len(out)))
		}
		return fmt.Errorf("attribute: writing %d connections: %w", len(out), err)
	}
	a.m.written.Add(float64(len(out)))
	a.outPeak = max(a.outPeak, len(out))
	a.spare = out[:0] // the sink kept nothing of it (see Sink): the next flush reuses it
	return nil
}

// writeChunk is how many connections a flush gathers before it hands them to the sink and
// goes on in the same storage (≈ 680 KB: it stays in the cache instead of growing to a
// second's connections).
const writeChunk = 1024

// runDue checks every record due by now, under one store View per viewBatch checks, and
// writes every writeChunk connections to the sink while the sink takes them (the first
// failure is returned; the connections it was offered wait in a.retry).
func (a *Attributor) runDue(ctx context.Context, now time.Time) error {
	var werr error
	nowSec := now.Unix()
	from := a.cursor
	if span := int64(len(a.wheel.slots)); nowSec-from >= span {
		from = nowSec - span + 1 // every slot once; each entry is checked if due
	}
	v := a.store.MemoView(&a.memo)
	n := 0
	warmth := v.Warmth()
	a.lookupsWarm = warmth == ownership.WarmLookups
	for sec := from; sec <= nowSec; sec++ {
		for due := a.wheel.take(sec); len(due) > 0; due = a.wheel.take(sec) { // checks may reschedule into sec
			for i, e := range due {
				if warmth != ownership.WarmNone && i%warmChunk == 0 {
					a.warmAhead(v, due, i/warmChunk, a.lookupsWarm)
				}
				switch {
				case !e.live():
				case e.dueAfter(nowSec) > 0:
					a.later = append(a.later, e) // a later round of this slot
				default:
					if n++; n%viewBatch == 0 {
						v.Close()
						v = a.store.MemoView(&a.memo)
					}
					a.check(v, e.h, now)
					if len(a.out) >= writeChunk && a.retry == nil {
						a.taking = due[i+1:] // the full policy may force them while the part is written
						werr = a.writePart(ctx, &v, sec)
						a.taking = nil
					}
				}
			}
			a.wheel.giveBack(due)
		}
		for _, e := range a.later {
			if e.live() {
				a.wheel.add(nowSec+e.dueAfter(nowSec), e.h)
			}
		}
		clear(a.later)
		a.later = a.later[:0]
	}
	v.Close()
	a.cursor = max(a.cursor, nowSec+1)
	a.trim(nowSec)
	return werr
}

// writePart hands the connections gathered so far to the sink in the middle of a flush (at
// second sec), then gathers the next ones in the same storage. The store's View and the lock
// are let go while the sink writes: Add may run meanwhile (it schedules no earlier than sec,
// which this flush still processes, and what it writes lands after the part). A failed part
// waits in a.retry (a copy), and no other part is written in this flush.
func (a *Attributor) writePart(ctx context.Context, v *ownership.View, sec int64) error {
	v.Close()
	a.cursor = max(a.cursor, sec)
	part := a.out
	a.out, a.vips = part[len(part):], nil // the sink may keep VIP endpoints: new ones go elsewhere
	a.mu.Unlock()
	err := a.sink.Write(ctx, part)
	a.mu.Lock()
	if err != nil {
		a.m.sinkErrors.Inc()
		a.retry = append([]flow.Conn(nil), part...)
	} else {
		a.m.written.Add(float64(len(part)))
		a.outPeak = max(a.outPeak, len(part))
	}
	a.out = append(part[:0], a.out...) // what Add wrote meanwhile, to the front
	*v = a.store.MemoView(&a.memo)
	return err
}

// warmChunk is how many due records a warming step takes; warmLead is how many chunks ahead
// of the one checked the pipeline enters a chunk (see ownership.View.WarmStep: a chunk is warm
// two steps after it entered, and one more step gives its last link's misses a chunk's checks
// to arrive in). Small chunks spread the prefetches between the checks: a burst of them
// waits for the core's few outstanding misses (8 against 32: ≈ −4% at 100,000 pods).
const warmChunk, warmLead = 8, 3

// warmAhead advances the warming pipeline before chunk c of due is checked: at the first
// chunk it fills the pipeline, then it enters chunk c+warmLead (its lookups too, or only the
// owners it renders).
func (a *Attributor) warmAhead(v ownership.View, due []ref, c int, lookups bool) {
	if c == 0 {
		for j := range warmLead {
			a.warmStep(v, due, j, lookups)
		}
	}
	a.warmStep(v, due, c+warmLead, lookups)
}

// warmStep enters chunk c of due into the pipeline: the addresses its records will look up
// (with lookups) and the local pods' owners they will render (an empty chunk past the end).
func (a *Attributor) warmStep(v ownership.View, due []ref, c int, lookups bool) {
	var addrs [2 * warmChunk]netip.Addr // (a record and the one that rides it)
	var ports [2 * warmChunk]uint16
	var owners [2 * warmChunk]ownership.Ref
	n, m := 0, 0
	for _, e := range due[min(c*warmChunk, len(due)):min((c+1)*warmChunk, len(due))] {
		if !e.live() {
			continue
		}
		for h := e.h; h != nil; h = h.rider() {
			if !h.is(stLocalDone) && h.local != 0 {
				owners[m] = h.local // its owner (the hint) is read to name the local end
				m++
			}
			if lookups && !h.is(stRemoteDone) {
				addrs[n], ports[n] = h.r.peer(&a.nats) // what decide looks up
				n++
			}
		}
	}
	v.WarmStep(&a.warmer, c, addrs[:n], ports[:n], owners[:m])
}

// Run flushes every Tick until ctx ends, then flushes what is due one last time.
func (a *Attributor) Run(ctx context.Context) error {
	t := time.NewTicker(a.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := a.Flush(ctx); err != nil {
				a.log.Warn("flush failed; the batch is retried", "err", err)
			}
		}
	}
}

// Held returns the number of records in the holding window.
func (a *Attributor) Held() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.held
}

// check advances one record: decide it if possible, then emit it (alone or joined) or wait.
func (a *Attributor) check(v ownership.View, h *held, now time.Time) {
	nowNs := now.UnixNano()
	deadline := a.deadline(h)
	final := nowNs >= deadline
	if !h.is(stDecided) {
		h.markIf(stDecided, a.decide(v, h, final))
	}
	if !h.is(stDecided) {
		a.recheck(h, h, nowNs, deadline)
		return
	}
	if p := h.partner; p != nil {
		if !p.is(stDecided) && p.is(stRides) { // checked here, within its own window
			pd := a.deadline(p)
			if p.markIf(stDecided, a.decide(v, p, nowNs >= pd)); !p.is(stDecided) {
				a.recheck(h, p, nowNs, pd) // p's next check, on h's wheel entry
				return
			}
		}
		if !p.is(stDecided) && final {
			p.markIf(stDecided, a.decide(v, p, true))
		}
		if !p.is(stDecided) {
			return // the partner's own check emits both
		}
		if !a.confirmVIPJoin(h, p) {
			a.schedule(p, nowNs) // apart again: each goes on alone
			a.schedule(h, nowNs)
			return
		}
		a.emitJoined(v, h, p)
		return
	}
	if joinBy := h.enteredAt() + int64(a.cfg.JoinWait); h.expectsPeer() && nowNs < joinBy {
		a.schedule(h, joinBy) // the peer's exporter will report its side
		return
	}
	a.emitSingle(v, h)
}

// decide looks up what h needs; it reports whether everything is known.
func (a *Attributor) decide(v ownership.View, h *held, final bool) bool {
	if !h.is(stLocalDone) {
		if h.r.pod() {
			if h.local != 0 && v.Named(h.local) {
				h.state |= stLocalDone // the hint, named by Kubernetes: as rich as a Resolve
			} else if r, ok := v.Resolve(h.r.name); ok {
				h.local, h.state = r, h.state|stLocalDone
			} else if final {
				h.state |= stLocalNoOwner | stLocalDone
			}
		} else {
			_, ok := h.r.hostOwner(a.peers.node(h.r.pair))
			h.state |= localEnd(ok)
		}
	}
	at := lookupTime(&h.r, a.cfg.LongConn) // the moment the remote end is attributed at
	if !h.is(stRemoteDone) {
		addr, port := h.r.peer(&a.nats)
		if r := v.LookupBrief(addr, port, at, final); r.Bits&ownership.BriefPending == 0 {
			h.remote, h.state = answer(r), h.state|stRemoteDone
		}
	}
	if !h.is(stVIPDone) {
		if h.r.client() && h.r.translated() {
			if r := v.LookupServiceBrief(h.r.remoteAddr(&a.nats), at, final); r.Bits&ownership.BriefPending == 0 {
				a.nats.at(h.r.nat).vip, h.state = answer(r), h.state|stVIPDone
			}
		} else {
			h.state |= stVIPDone
		}
	}
	return h.state&(stLocalDone|stRemoteDone|stVIPDone) == stLocalDone|stRemoteDone|stVIPDone
}

// confirmVIPJoin keeps a join made through a Service address only if the client's
// destination was attributed to a Service; otherwise it parts the two records.
func (a *Attributor) confirmVIPJoin(x, y *held) bool {
	if !x.is(stViaVIP) {
		return true
	}
	cl := x
	if !cl.r.client() {
		cl = y
	}
	if cl.remote.service() {
		return true
	}
	x.partner, y.partner, x.state, y.state = nil, nil, x.state&^stViaVIP, y.state&^stViaVIP
	return false
}

// finish takes h out of the holding window, gives back what it kept out of line and recycles
// it (recycle stays small enough to inline).
func (a *Attributor) finish(h *held) {
	a.held--
	a.unindex(h)
	a.nats.dropRecord(&h.r)
	a.recycle(h)
}

// expectsPeer reports whether the other side of h's connection is likely observed too: its
// address is an exporter's, or it is a Service whose backends are.
func (h *held) expectsPeer() bool {
	return h.remote.exporter() || h.remote.service()
}
