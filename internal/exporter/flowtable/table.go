// Package flowtable turns kernel socket events into flow records: final records at close,
// interim records for connections open longer than an interval, and records for sockets that
// were open before the exporter started. It owns no goroutine: one owner calls Apply with ring
// events and Snapshot with iterator results, in the order they were read.
package flowtable

import (
	"net/netip"
	"time"

	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
)

// Resolver names the local workload of a socket.
type Resolver interface {
	Workload(cgroupID uint64, pid uint32, comm string) flow.Workload
}

// Config of a Table. Zero values take the defaults.
type Config struct {
	Interval time.Duration // interim records for connections open longer than this (default 30 s)
	MaxConns int           // open connections tracked for interim records (default 262,144); beyond: counted, reported at close only
	// KeyBySocketAddr is set with the fallback hooks: sockets are keyed by address, and opens
	// arrive as events instead of kernel slots.
	KeyBySocketAddr bool
	// ResetEvents says the tcp_send_reset signal is attached; without it an abort's RST is
	// inferred from the state.
	ResetEvents bool
	// EphemeralPorts is the local port range for connect() (net.ipv4.ip_local_port_range),
	// used to guess the role of a socket whose open was not seen (default 32768–60999).
	EphemeralPorts [2]uint16
	// ListenerOwner names the single process that holds a listening socket, by its inode; an
	// accepted socket (whose pid was not captured at connect) takes its listener's process.
	// Nil: accepted sockets have no pid.
	ListenerOwner func(inode uint64) (pid uint32, comm string, ok bool)
}

// Stats count what the table did; all totals since creation.
type Stats struct {
	Finals, Interims        uint64 // records emitted
	TableFull               uint64 // open connections not tracked because the table was full
	Vanished                uint64 // tracked connections that disappeared without a close event (a lost event)
	LateSnapshots           uint64 // snapshot entries of sockets already closed (ignored)
	Tracked                 int    // open connections tracked now
	OpensPending            int    // fallback mode: opens waiting for their close
	OpensDropped            uint64 // fallback mode: opens forgotten because too many were pending
	DirectionInferred       uint64 // closes whose direction came from listeners or ports, not the open
	HeldResets, EarlyResets uint64 // RST events matched to a held close / before the close
	// Server sockets without a captured process, by how their listener named them: by its
	// single owner, not at all because no listener on their port is known (yet), or not at all
	// because the listener's process is unknown or shared.
	ServerNamed, ServerNoListener, ServerOwnerUnknown uint64
	Listeners                                         int // listening sockets known from the last passes
}

// conn is a tracked open connection, kept small: the table may hold hundreds of thousands.
type conn struct {
	last       counters       // what the last record reported, cumulative
	id         uint64         // conn_id
	start      uint64         // monotonic ns
	lastReport uint64         // monotonic ns of the last record, 0 if none
	workload   *flow.Workload // interned
	netns      uint32
	resetsSent uint32 // not yet reported
	seen       uint32 // the snapshot pass that last listed it
	role       role
	misses     uint8 // passes over its namespace in a row that did not list it
	startKnown bool
	// unsure: fallback hooks, first listed by a pass with no open known: its open event may
	// still be in the ring, so it is reported from its next pass, or takes the open's identity.
	unsure bool
}

// role is a flow.Direction in one byte.
type role uint8

const (
	roleUnknown role = iota
	roleClient
	roleServer
)

func roleOf(d flow.Direction) role {
	switch d {
	case flow.Client:
		return roleClient
	case flow.Server:
		return roleServer
	}
	return roleUnknown
}

func (r role) direction() flow.Direction {
	switch r {
	case roleClient:
		return flow.Client
	case roleServer:
		return flow.Server
	}
	return flow.DirectionUnknown
}

type open struct {
	id    uint64
	start uint64
	flags uint16
}

type listenKey struct {
	netns uint32
	port  uint16
}

type listener struct {
	bound netip.Addr // the address it is bound to; invalid for a wildcard
	inode uint64     // the listening socket's inode
}

// Table is the exporter's flow table. Not safe for concurrent use.
type Table struct {
	cfg      Config
	resolver Resolver
	wall     func(monoNs uint64) time.Time

	conns      map[uint64]conn
	opens      map[uint64]open // fallback mode only
	listeners  map[listenKey]listener
	bound      map[netip.AddrPort]struct{} // listeners bound to a specific address
	early      map[uint64]uint32           // RSTs sent before their socket's close event
	held, hold []held                      // closes held one cycle for the RST that follows an abort
	pass       pass
	workloads  map[flow.Workload]*flow.Workload // interned, for tracked connections
	nextID     uint64
	stats      Stats
	memo       memo
}

type memo struct {
	valid  bool
	cgroup uint64
	pid    uint32
	comm   string
	w      flow.Workload
}

// pass is the state of a snapshot pass.
type pass struct {
	gen       uint32
	now       uint64
	netns     map[uint32]bool // namespaces read in this pass
	listeners []passListener
	pending   []tracer.Event // sockets of unknown role, for EndPass
}

type held struct {
	key uint64
	rec flow.Record
}

// New returns an empty table. wall converts kernel monotonic timestamps to wall-clock time.
func New(cfg Config, r Resolver, wall func(uint64) time.Time) *Table {
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.EphemeralPorts[1] == 0 {
		cfg.EphemeralPorts = [2]uint16{32768, 60999}
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 262144
	}
	return &Table{cfg: cfg, resolver: r, wall: wall,
		conns: map[uint64]conn{}, opens: map[uint64]open{}, listeners: map[listenKey]listener{}, bound: map[netip.AddrPort]struct{}{},
		early: map[uint64]uint32{}, pass: pass{netns: map[uint32]bool{}}, workloads: map[flow.Workload]*flow.Workload{}, nextID: 1}
}

// Stats returns the table's counters.
func (t *Table) Stats() Stats {
	s := t.stats
	s.Tracked = len(t.conns)
	s.OpensPending = len(t.opens)
	s.Listeners = len(t.listeners)
	return s
}

func (t *Table) key(e *tracer.Event) uint64 {
	if t.cfg.KeyBySocketAddr {
		return e.SkAddr
	}
	return e.Key
}

// Apply processes ring events in order and appends the records that are ready to out. A final
// record is held for one call, so that the RST an abort sends after the CLOSE transition is
// counted in it.
func (t *Table) Apply(evs []tracer.Event, out []flow.Record) []flow.Record {
	t.held, t.hold = t.hold, t.held[:0] // last call's closes now wait for this call's RSTs
	t.memo.valid = false
	for i := range evs {
		e := &evs[i]
		switch e.Kind {
		case tracer.KindClose:
			t.close(e)
		case tracer.KindOpen:
			t.open(e)
		case tracer.KindResetSent:
			t.resetSent(e)
		}
	}
	for _, h := range t.held {
		out = append(out, h.rec)
	}
	t.held = t.held[:0]
	return out
}

// Flush appends every held record to out (at shutdown).
func (t *Table) Flush(out []flow.Record) []flow.Record {
	for _, h := range t.held {
		out = append(out, h.rec)
	}
	for _, h := range t.hold {
		out = append(out, h.rec)
	}
	t.held, t.hold = t.held[:0], t.hold[:0]
	return out
}

const maxPending = 1 << 16

func (t *Table) open(e *tracer.Event) {
	if len(t.opens) >= maxPending*4 {
		for k := range t.opens { // forget an arbitrary pending open: bounded, counted
			delete(t.opens, k)
			t.stats.OpensDropped++
			break
		}
	}
	k := t.key(e)
	o := open{id: t.newID(), start: e.StartNs, flags: e.Flags}
	t.opens[k] = o
	if c, ok := t.conns[k]; ok && c.unsure {
		// a pass listed it before its open was applied: it is this connection
		c.id, c.start, c.startKnown, c.unsure = o.id, o.start, true, false
		if r := roleOf(direction(o.flags)); r != roleUnknown {
			c.role = r
		}
		t.conns[k] = c
	}
}

func (t *Table) newID() uint64 {
	id := t.nextID
	t.nextID++
	return id
}

func (t *Table) resetSent(e *tracer.Event) {
	k := e.Key
	if t.cfg.KeyBySocketAddr {
		k = e.SkAddr
	}
	for _, hs := range [][]held{t.held, t.hold} {
		for i := range hs {
			if hs[i].key == k {
				hs[i].rec.ResetsSent++
				t.stats.HeldResets++
				return
			}
		}
	}
	if c, ok := t.conns[k]; ok {
		c.resetsSent++
		t.conns[k] = c
		return
	}
	if len(t.early) >= maxPending {
		clear(t.early)
	}
	t.early[k]++
	t.stats.EarlyResets++
}

// intern returns a shared copy of w; the set is bounded (cleared when large: tracked
// connections keep their pointers, so nothing is lost but sharing).
func (t *Table) intern(w flow.Workload) *flow.Workload {
	if p, ok := t.workloads[w]; ok {
		return p
	}
	if len(t.workloads) >= 1<<16 {
		clear(t.workloads)
	}
	p := &w
	t.workloads[w] = p
	return p
}
