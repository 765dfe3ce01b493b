package attribute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// MaxHeld bounds the records held (default 1,048,576). When full, the oldest record is
	// decided at once with what is known (counted as holding_full), never dropped.
	MaxHeld int
	// JoinTolerance: the two sides' records of one connection start and end within it
	// (default 5 s; it covers clock skew, handshake and close times).
	JoinTolerance time.Duration
	// LongConn: a record spanning longer than this is attributed at its end, not its start
	// (default 5 min).
	LongConn time.Duration
	// Tick is how often Run flushes (default 1 s).
	Tick time.Duration
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

type clientKey struct {
	addr [16]byte
	port uint16
}

// held is one record in the holding window.
type held struct {
	in       Input
	t        time.Time // the moment the remote end is attributed at
	deadline time.Time // end of the holding window: decide with what is known
	joinBy   time.Time // until when a decided record waits for its peer's record
	backoff  time.Duration

	local       ownership.Owner
	localReason flow.Reason
	localDone   bool
	remote      ownership.Result // the peer: for a client the server it reached, for a server the client
	remoteDone  bool
	vip         *ownership.Result // for a translated client: the address it dialled (rare: a pointer keeps held small)
	vipDone     bool

	decided bool
	done    bool
	partner *held
	viaVIP  bool // joined to its partner through a Service address (verified once decided)

	sameClient *held // the next older held record of the same client address and port
}

// Attributor holds records until they can be attributed, joins both ends and writes the
// connections to a Sink. Add may be called from any goroutine; Flush (or Run) from one.
type Attributor struct {
	cfg   Config
	store *ownership.Store
	sink  Sink
	now   func() time.Time
	log   *slog.Logger

	mu       sync.Mutex
	wheel    map[int64][]*held   // by Unix second of the next check
	cursor   int64               // next second Flush processes
	order    []*held             // arrival order, for the full policy
	byClient map[clientKey]*held // newest record of each client address and port; older ones via sameClient
	held     int
	out      []flow.Conn

	flushMu sync.Mutex // one Flush at a time
	retry   []flow.Conn

	m metrics
}

// New returns an Attributor reading ownership from store and writing to sink.
func New(cfg Config, store *ownership.Store, sink Sink, now func() time.Time, reg prometheus.Registerer, log *slog.Logger) (*Attributor, error) {
	if store == nil || sink == nil || now == nil {
		return nil, errors.New("attribute: store, sink and clock are required")
	}
	cfg.setDefaults()
	a := &Attributor{
		cfg: cfg, store: store, sink: sink, now: now,
		log:      log.With("component", "attribute"),
		wheel:    map[int64][]*held{},
		cursor:   now().Unix(),
		byClient: map[clientKey]*held{},
	}
	if err := a.m.register(reg, a); err != nil {
		return nil, err
	}
	return a, nil
}

// Add takes records into the holding window. Invalid records are counted and reported in the
// returned error; the others are taken. Each record's local end is also an ownership claim.
func (a *Attributor) Add(ins ...Input) error {
	now := a.now()
	lag := a.store.ReadyAt(now).Sub(now) // how long Kubernetes may take to speak about a moment
	var errs []error
	claims := make([]ownership.Claim, 0, len(ins))
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range ins {
		in := &ins[i]
		if err := validate(in); err != nil {
			a.m.rejected.Inc()
			errs = append(errs, err)
			continue
		}
		o := ownership.Owner{Kind: flow.EndpointPod, PodUID: in.Record.Workload.PodUID} // the store keeps the richest owner of the UID
		if in.Record.Workload.Kind != flow.KindPod {
			o, _ = localOwner(a.store, in)
		}
		if c, ok := claim(in, o); ok {
			claims = append(claims, c)
		}
		for a.held >= a.cfg.MaxHeld {
			a.forceOldest(now)
		}
		h := &held{in: *in, t: lookupTime(&in.Record, a.cfg.LongConn), deadline: now.Add(a.cfg.Window), joinBy: now.Add(a.cfg.JoinWait)}
		a.link(h)
		a.order = append(a.order, h)
		a.held++
		a.m.received.Inc()
		next := h.t.Add(lag)
		if next.Before(now) {
			next = now
		}
		a.schedule(h, minTime(next, h.deadline))
	}
	_ = a.store.Observe(claims...) // bounded by the store; a rejected claim only costs coverage
	if len(errs) > 0 {
		return fmt.Errorf("attribute: %d of %d records rejected: %w", len(errs), len(ins), errors.Join(errs...))
	}
	return nil
}

func (a *Attributor) schedule(h *held, at time.Time) {
	sec := at.Unix()
	if at.Nanosecond() != 0 {
		sec++
	}
	sec = max(sec, a.cursor)
	a.wheel[sec] = append(a.wheel[sec], h)
}

// link pairs h with the other side's record of the same connection, if held.
func (a *Attributor) link(h *held) {
	k := h.in.clientKey()
	first := a.byClient[k]
	var loose *held
	looseN := 0
	for c := first; c != nil; c = c.sameClient {
		switch a.matches(h, c) {
		case exact:
			h.partner, c.partner = c, h
			loose, looseN = nil, 0
		case viaVIP:
			loose = c
			looseN++
		}
		if h.partner != nil {
			break
		}
	}
	if looseN == 1 { // an ambiguous join is no join
		h.partner, loose.partner = loose, h
		h.viaVIP, loose.viaVIP = true, true
	}
	h.sameClient = first
	a.byClient[k] = h
}

// unindex removes h from the records of its client address and port.
func (a *Attributor) unindex(h *held) {
	k := h.in.clientKey()
	first := a.byClient[k]
	if first == h {
		if h.sameClient == nil {
			delete(a.byClient, k)
		} else {
			a.byClient[k] = h.sameClient
		}
		h.sameClient = nil
		return
	}
	for c := first; c != nil; c = c.sameClient {
		if c.sameClient == h {
			c.sameClient = h.sameClient
			break
		}
	}
	h.sameClient = nil
}

// Flush decides every record due by now and writes the ready connections to the sink.
func (a *Attributor) Flush(ctx context.Context) error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	now := a.now()
	a.mu.Lock()
	for sec := a.cursor; sec <= now.Unix(); sec++ {
		for due := a.wheel[sec]; len(due) > 0; due = a.wheel[sec] { // checks may reschedule into sec
			delete(a.wheel, sec)
			for _, h := range due {
				if !h.done {
					a.check(h, now)
				}
			}
		}
	}
	a.cursor = max(a.cursor, now.Unix()+1)
	a.trimOrder()
	out := a.out
	if len(a.retry) > 0 {
		out = append(a.retry, a.out...)
	}
	a.retry, a.out = nil, make([]flow.Conn, 0, len(out))
	a.mu.Unlock()
	if len(out) == 0 {
		return nil
	}
	if err := a.sink.Write(ctx, out); err != nil {
		a.m.sinkErrors.Inc()
		if len(out) <= a.cfg.MaxHeld {
			a.retry = out
		} else {
			a.m.sinkDropped.Add(float64(len(out)))
		}
		return fmt.Errorf("attribute: writing %d connections: %w", len(out), err)
	}
	a.m.written.Add(float64(len(out)))
	return nil
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
func (a *Attributor) check(h *held, now time.Time) {
	final := !now.Before(h.deadline)
	if !h.decided {
		h.decided = a.decide(h, final)
	}
	if !h.decided {
		h.backoff = min(max(2*h.backoff, time.Second), a.cfg.Window)
		a.schedule(h, minTime(now.Add(h.backoff), h.deadline))
		return
	}
	if p := h.partner; p != nil {
		if !p.decided && final {
			p.decided = a.decide(p, true)
		}
		if p.decided && !a.confirmVIPJoin(h, p) {
			a.schedule(p, now) // apart again: each goes on alone
			a.schedule(h, now)
			return
		}
		if p.decided {
			a.emitJoined(h, p)
		}
		return // the partner's own check emits both
	}
	if h.expectsPeer() && now.Before(h.joinBy) {
		a.schedule(h, h.joinBy) // the peer's exporter will report its side
		return
	}
	a.emitSingle(h)
}

// decide looks up what h needs; it reports whether everything is known.
func (a *Attributor) decide(h *held, final bool) bool {
	if !h.localDone {
		o, ok := localOwner(a.store, &h.in)
		switch {
		case ok:
			h.local, h.localDone = o, true
		case final || h.in.Record.Workload.Kind != flow.KindPod:
			h.local, h.localReason, h.localDone = o, flow.ReasonNoOwner, true
		}
	}
	if !h.remoteDone {
		addr, port := h.in.Record.RemoteAddr, uint16(0)
		if h.in.isClient() {
			addr, port = h.in.serverAddr()
		}
		if r := a.store.Lookup(addr, port, h.t, final); !r.Pending {
			h.remote, h.remoteDone = r, true
		}
	}
	if !h.vipDone {
		if h.in.isClient() && h.in.TranslatedAddr.IsValid() {
			if r := a.store.Lookup(h.in.Record.RemoteAddr, 0, h.t, final); !r.Pending {
				h.vip, h.vipDone = &r, true
			}
		} else {
			h.vipDone = true
		}
	}
	return h.localDone && h.remoteDone && h.vipDone
}

// forceOldest decides the oldest held record now (the full policy).
func (a *Attributor) forceOldest(now time.Time) {
	a.trimOrder()
	if len(a.order) == 0 {
		return
	}
	h := a.order[0]
	a.m.full.Inc()
	if !h.decided {
		h.decided = a.decide(h, true)
	}
	if p := h.partner; p != nil {
		if !p.decided {
			p.decided = a.decide(p, true)
		}
		if a.confirmVIPJoin(h, p) {
			a.emitJoined(h, p)
			return
		}
	}
	a.emitSingle(h)
}

// confirmVIPJoin keeps a join made through a Service address only if the client's
// destination was attributed to a Service; otherwise it parts the two records.
func (a *Attributor) confirmVIPJoin(x, y *held) bool {
	if !x.viaVIP {
		return true
	}
	cl := x
	if !cl.in.isClient() {
		cl = y
	}
	if cl.remote.Attributed() && cl.remote.Owner.Kind == flow.EndpointService {
		return true
	}
	x.partner, y.partner, x.viaVIP, y.viaVIP = nil, nil, false, false
	return false
}

// trimOrder drops emitted records from the front of the arrival order.
func (a *Attributor) trimOrder() {
	i := 0
	for i < len(a.order) && a.order[i].done {
		a.order[i] = nil
		i++
	}
	a.order = a.order[i:]
	if cap(a.order) > 1024 && len(a.order) < cap(a.order)/4 {
		a.order = append([]*held(nil), a.order...)
	}
}

func (a *Attributor) finish(h *held) {
	h.done = true
	a.held--
	a.unindex(h)
}

// expectsPeer reports whether the other side of h's connection is likely observed too: its
// address is an exporter's, or it is a Service whose backends are.
func (h *held) expectsPeer() bool {
	return h.remote.Exporter || (h.remote.Attributed() && h.remote.Owner.Kind == flow.EndpointService)
}
