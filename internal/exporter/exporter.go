// Package exporter runs flowscope's per-node exporter: it drives the kernel tracer, feeds the
// flow table with ring events and per-namespace socket snapshots, and hands flow records and
// periodic summaries to a sink (JSON lines, or the transport to a collector).
package exporter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/flowscope/flowscope/internal/exporter/conntrack"
	"github.com/flowscope/flowscope/internal/exporter/flowtable"
	"github.com/flowscope/flowscope/internal/exporter/identity"
	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// Sink receives the exporter's output. Both methods are called from the exporter's one loop
// goroutine, never concurrently; a Sink must not block for long (buffer and count instead).
type Sink interface {
	Write(recs []flow.Record) error
	Summary(s Summary) error
	Heartbeat(h flowbatch.Heartbeat) error
}

// Config of the exporter loop. Zero values take the defaults.
type Config struct {
	Table         flowtable.Config
	PollInterval  time.Duration // how often the ring buffer is drained (default 100 ms)
	SnapshotEvery time.Duration // how often open sockets are read in every namespace (default Interval/3, at least 1 s)
	SummaryEvery  time.Duration // how often a summary goes to the sink (default 10 s; negative: never)
	// MaxBatch is how many events one step reads, applies and writes (default 256): small
	// enough that a step's events, records and output stay in the CPU's caches.
	MaxBatch int
	// HeartbeatEvery is how often the node's address ownerships go to the sink (default 5 s;
	// negative: never).
	HeartbeatEvery time.Duration
	NodeName       string // the node the heartbeats speak for (default: the host name)
	// ProcessWorkload names the workload of a process, to name a namespace by its processes
	// (default: its cgroup from /proc, parsed like a socket's).
	ProcessWorkload func(pid uint32) flow.Workload
}

func (c *Config) defaults() {
	if c.Table.Interval <= 0 {
		c.Table.Interval = 30 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 100 * time.Millisecond
	}
	if c.SnapshotEvery <= 0 {
		c.SnapshotEvery = max(c.Table.Interval/3, time.Second)
	}
	if c.SummaryEvery == 0 {
		c.SummaryEvery = 10 * time.Second
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 256
	}
	if c.HeartbeatEvery == 0 {
		c.HeartbeatEvery = 5 * time.Second
	}
	if c.NodeName == "" {
		c.NodeName, _ = os.Hostname()
	}
	if c.Table.ListenerOwner == nil {
		c.Table.ListenerOwner = (&identity.SocketOwners{}).Owner
	}
	if c.ProcessWorkload == nil {
		proc := identity.ProcReader{Root: "/proc"}
		c.ProcessWorkload = func(pid uint32) flow.Workload {
			p, err := proc.CgroupPath(pid)
			if err != nil {
				return flow.Workload{Kind: flow.KindUnknown}
			}
			return identity.ParseCgroupPath(p)
		}
	}
}

// Exporter is the exporter loop. Run owns its only goroutine.
type Exporter struct {
	cfg   Config
	tr    *tracer.Tracer
	table *flowtable.Table
	sink  Sink
	log   *slog.Logger
	wall  *tracer.WallClock
	ns    *namespaces
	own   *owners
	nat   *conntrack.Translator // NAT translations of client sockets (finalize.go)

	evs   []tracer.Event
	recs  []flow.Record
	stats atomic.Pointer[Stats]
	st    Stats
}

// Stats are the loop's own counters (the table's and the kernel's come with them in a Summary).
type Stats struct {
	Table           flowtable.Stats
	BadEvents       uint64 // malformed ring records
	SinkErrors      uint64
	Snapshots       uint64 // namespace snapshots taken
	SnapshotErrors  uint64
	Namespaces      int // network namespaces seen by the last scan
	LastSnapshotDur time.Duration
}

// New builds an exporter around an opened tracer. It does not start anything.
func New(cfg Config, tr *tracer.Tracer, r flowtable.Resolver, sink Sink, log *slog.Logger) (*Exporter, error) {
	cfg.defaults()
	cfg.Table.KeyBySocketAddr = tr.Hook() != tracer.HookTPBTF
	if cfg.Table.EphemeralPorts[1] == 0 {
		cfg.Table.EphemeralPorts = tr.EphemeralPorts() // one reading of the range for kernel and table
	}
	ns, err := newNamespaces()
	if err != nil {
		return nil, err
	}
	x := &Exporter{cfg: cfg, tr: tr, sink: sink, log: log, wall: tracer.NewWallClock(), ns: ns,
		own: newOwners(cfg.NodeName, cfg.ProcessWorkload)}
	x.table = flowtable.New(cfg.Table, r, x.wall.Time)
	x.nat = conntrack.New(conntrack.Config{}, nil, time.Now, log)
	x.own.listeners = func() []flowtable.Listener { return x.table.Listeners(ns.self) }
	x.stats.Store(&Stats{})
	return x, nil
}

// Stats returns the loop's counters as of its last step; safe from any goroutine.
func (x *Exporter) Stats() Stats { return *x.stats.Load() }

// NATStats returns the conntrack translator's counters; safe from any goroutine.
func (x *Exporter) NATStats() conntrack.Stats { return x.nat.Stats() }

// Run drains the ring, takes snapshots and writes output until ctx ends; then it flushes the
// records it still holds.
func (x *Exporter) Run(ctx context.Context) error {
	defer x.nat.Close()
	x.snapshotAll() // sockets that were open before we started
	nextSnap := time.Now().Add(x.cfg.SnapshotEvery)
	nextSummary := time.Now().Add(x.cfg.SummaryEvery)
	nextHeartbeat := time.Now()
	nextCalib := time.Now().Add(time.Minute)
	for ctx.Err() == nil {
		if err := x.drain(time.Now().Add(x.cfg.PollInterval)); err != nil {
			return err
		}
		now := time.Now()
		if !now.Before(nextSnap) {
			x.snapshotAll()
			nextSnap = now.Add(x.cfg.SnapshotEvery)
		}
		if x.cfg.SummaryEvery > 0 && !now.Before(nextSummary) {
			x.summary()
			nextSummary = now.Add(x.cfg.SummaryEvery)
		}
		if x.cfg.HeartbeatEvery > 0 && !now.Before(nextHeartbeat) {
			x.heartbeat()
			nextHeartbeat = now.Add(x.cfg.HeartbeatEvery)
		}
		if !now.Before(nextCalib) {
			x.wall.Recalibrate()
			nextCalib = now.Add(time.Minute)
		}
	}
	if err := x.drain(time.Now()); err != nil {
		return err
	}
	x.write(x.table.Flush(x.recs[:0]))
	if x.cfg.SummaryEvery > 0 {
		x.summary()
	}
	return nil
}

// drain waits for ring events until the deadline (or a forced wakeup), then reads and applies
// them in steps of MaxBatch until the ring is empty.
func (x *Exporter) drain(deadline time.Time) error {
	for {
		var bad int
		var err error
		x.evs, bad, err = x.tr.ReadEvents(x.evs[:0], deadline, x.cfg.MaxBatch)
		x.st.BadEvents += uint64(bad)
		if err != nil {
			return fmt.Errorf("draining kernel events: %w", err)
		}
		x.write(x.table.Apply(x.evs, x.recs[:0]))
		if len(x.evs) < x.cfg.MaxBatch {
			x.publish()
			return nil
		}
		deadline = time.Now() // the ring holds more: read on without waiting
	}
}

func (x *Exporter) write(recs []flow.Record) {
	x.recs = recs[:0]
	if len(recs) == 0 {
		return
	}
	x.finalize(recs)
	if err := x.sink.Write(recs); err != nil {
		x.st.SinkErrors++
		x.log.Warn("writing flow records", "error", err, "records", len(recs))
	}
}

// snapshotAll reads the open and listening sockets of every network namespace and applies
// them as they are read; no ring event is applied during the pass (see flowtable.BeginPass).
func (x *Exporter) snapshotAll() {
	if !x.tr.SnapshotAvailable() {
		return
	}
	start := time.Now()
	x.ns.scan()
	x.st.Namespaces = len(x.ns.paths)
	x.table.BeginPass(tracer.MonotonicNow())
	for ino, path := range x.ns.paths {
		var rd io.ReadCloser
		err := inNamespace(path, func() (err error) {
			rd, err = x.tr.OpenSnapshot()
			return err
		})
		if err == nil {
			err = x.tr.ReadSnapshot(rd, func(evs []tracer.Event) {
				x.write(x.table.SnapshotChunk(ino, evs, x.recs[:0]))
			})
			rd.Close()
			x.table.SnapshotChunk(ino, nil, nil) // marks the namespace read, even when it holds no socket
		}
		if err != nil {
			x.st.SnapshotErrors++
			x.log.Debug("socket snapshot failed", "netns", ino, "path", path, "error", err)
			continue
		}
		x.st.Snapshots++
	}
	x.write(x.table.EndPass(func(ino uint32) bool { _, ok := x.ns.paths[ino]; return ok }, x.recs[:0]))
	x.st.LastSnapshotDur = time.Since(start)
	x.publish()
}

// heartbeat sends the node's address ownerships.
func (x *Exporter) heartbeat() {
	x.ns.scan()
	hb := x.own.heartbeat(x.ns, time.Now().UTC())
	if err := x.sink.Heartbeat(hb); err != nil {
		x.st.SinkErrors++
	}
}

func (x *Exporter) publish() {
	s := x.st
	s.Table = x.table.Stats()
	x.stats.Store(&s)
}

func (x *Exporter) summary() {
	kc, err := x.tr.Counters()
	if err != nil {
		x.log.Warn("reading kernel counters", "error", err)
	}
	s := Summary{Time: time.Now().UTC(), Hook: string(x.tr.Hook()), Loop: x.Stats(), Kernel: kc, Degraded: x.tr.Degraded()}
	if err := x.sink.Summary(s); err != nil {
		x.st.SinkErrors++
	}
}
