// Package transport is the exporter's side of the exporter→collector path: a Shipper that
// batches flow records, numbers the batches, and delivers them over gRPC, HTTPS or UDP —
// chosen at start and switched when the chosen one keeps failing — retrying unacknowledged
// batches with backoff and jitter, and buffering through collector outages up to a memory
// bound beyond which the oldest batches are dropped and counted. Write never blocks.
package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/flowscope/flowscope/internal/exporter/adapt"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// Counter names the Shipper adds to batches (besides those given to AddCounters).
const (
	CounterDroppedRecords  = "transport_dropped_records" // pending overflow, buffer overflow, rejection, shutdown
	CounterDroppedBatches  = "transport_dropped_batches" // buffer overflow, rejection, shutdown
	CounterSwitches        = "transport_switches"        // auto transport switches
	CounterDegradedFlows   = "transport_degraded_flows"  // short flows folded into aggregates
	CounterRecutBatches    = "transport_recut_batches"   // batches re-cut to fit a datagram after a switch to UDP
	CounterSendFailures    = "transport_send_failures"   // failed delivery rounds
	CounterInvalidRecords  = "transport_invalid_records" // records without addresses or end time, dropped
	DefaultFoldShorterThan = 2 * time.Second
)

// Shipper delivers flow records to the collector. Create it with New, Start it, Write to it
// from the capture path, Stop it on shutdown.
type Shipper struct {
	cfg    Config
	log    *slog.Logger
	clock  func() time.Time
	m      *metrics
	sec    *security
	bootID string
	plan   adapt.Plan
	inst   adapt.Instance

	mu        sync.Mutex              // guards everything below
	open      *flowbatch.RecordWriter // the batch Write encodes records into (see Write)
	pending   []flow.Record
	spare     []flow.Record // the batcher's buffer from the previous cut, reused
	heartbeat *flowbatch.Heartbeat
	counters  map[string]uint64
	q         queue
	nextSeq   uint64
	budget    *adapt.Budget
	links     []link
	cur       int
	switched  time.Time // when auto last switched away from the preferred transport
	stats     Stats

	kickBatch chan struct{}
	kickSend  chan struct{}
	cancel    context.CancelFunc
	group     *errgroup.Group
}

// Stats are the Shipper's totals, for tests and status pages.
type Stats struct {
	RecordsWritten, RecordsDropped uint64
	BatchesQueued, BatchesAcked    uint64
	BatchesDropped, Switches       uint64
	BufferBytes, BufferBatches     int
	PendingRecords                 int // written, not yet in a batch
	Transport                      string
}

// New builds a Shipper; nothing runs until Start. Zero sizes in cfg come from the instance.
func New(cfg Config, reg prometheus.Registerer, log *slog.Logger, clock func() time.Time) (*Shipper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var inst adapt.Instance
	if cfg.Instance != nil {
		inst = *cfg.Instance
	} else {
		var err error
		if inst, err = adapt.Detect(os.DirFS("/"), runtime.NumCPU()); err != nil {
			log.Warn("reading the instance's size failed; using defaults", "component", "transport", "err", err)
		}
	}
	plan := adapt.PlanFor(inst, adapt.DefaultBudgetFraction)
	applyPlan(&cfg, plan)
	if cfg.NodeName == "" {
		cfg.NodeName, _ = os.Hostname()
	}
	if cfg.ExporterID == "" {
		cfg.ExporterID = cfg.NodeName
	}
	sec, err := loadSecurity(cfg)
	if err != nil {
		return nil, err
	}
	s := &Shipper{
		cfg: cfg, log: log.With("component", "transport"), clock: clock, sec: sec, plan: plan, inst: inst,
		bootID: newBootID(), counters: map[string]uint64{}, q: queue{limit: cfg.BufferBytes}, nextSeq: 1,
		open:      flowbatch.NewRecordWriter(),
		kickBatch: make(chan struct{}, 1), kickSend: make(chan struct{}, 1),
	}
	s.links = s.buildLinks()
	if s.m, err = newMetrics(reg, s); err != nil {
		return nil, err
	}
	return s, nil
}

func applyPlan(cfg *Config, p adapt.Plan) {
	if cfg.BatchSize == 0 {
		cfg.BatchSize = p.BatchSize
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = p.FlushInterval
	}
	if cfg.BufferBytes == 0 {
		cfg.BufferBytes = p.BufferBytes
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = max(p.MaxPending, 2*cfg.BatchSize)
	}
}

func newBootID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// BootID identifies this Shipper's run: the collector de-duplicates by (exporter, boot, seq).
func (s *Shipper) BootID() string { return s.bootID }

// Plan is what the Shipper derived from the instance (also useful for BPF map sizes).
func (s *Shipper) Plan() (adapt.Instance, adapt.Plan) { return s.inst, s.plan }

// SetBudget makes the Shipper fold short flows into aggregates while b is over budget; the
// Shipper ticks b at every batch cut.
func (s *Shipper) SetBudget(b *adapt.Budget) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.budget = b
}

// Start chooses the transport and starts the batching and sending goroutines.
func (s *Shipper) Start(ctx context.Context) error {
	s.choose(ctx)
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	s.cancel, s.group = cancel, g
	g.Go(func() error { return s.runBatcher(gctx) })
	g.Go(func() error { return s.runSender(gctx) })
	return nil
}

// Stop flushes what is pending, tries to deliver for a short while, then stops every
// goroutine; batches still undelivered are dropped and counted.
func (s *Shipper) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	_ = s.group.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.q.items {
		s.dropLocked(b, "shutdown")
	}
	s.q.items, s.q.bytes = nil, 0
	for _, l := range s.links {
		l.close()
	}
}

// Write hands records to the Shipper. It never blocks. Records are encoded at once into the
// open batch, which is queued when full (or at the next flush), so they are never copied;
// while short flows are being folded (over the CPU budget), over UDP (whose batches are cut
// by size) or while earlier records wait, they wait for the batcher instead: beyond
// MaxPending waiting records, the oldest are dropped and counted.
func (s *Shipper) Write(recs []flow.Record) {
	var full, queued bool
	s.mu.Lock()
	s.stats.RecordsWritten += uint64(len(recs))
	if len(s.pending) == 0 && !s.foldingLocked() && s.links[s.cur].name() != UDP {
		queued = s.encodeLocked(recs)
	} else {
		s.pending = append(s.pending, recs...)
		if over := len(s.pending) - s.cfg.MaxPending; over > 0 {
			s.pending = append(s.pending[:0], s.pending[over:]...)
			s.countDroppedRecordsLocked(over, "pending_full")
		}
		full = len(s.pending) >= s.cfg.BatchSize
	}
	s.mu.Unlock()
	s.m.written.Add(float64(len(recs)))
	if full {
		kick(s.kickBatch)
	}
	if queued {
		kick(s.kickSend)
	}
}

func (s *Shipper) foldingLocked() bool { return s.budget != nil && s.budget.Level() == adapt.Folding }

// encodeLocked adds valid records to the open batch, queueing it each time it is full; true
// when a batch was queued.
func (s *Shipper) encodeLocked(recs []flow.Record) (queued bool) {
	invalid := 0
	for i := range recs {
		r := &recs[i]
		if !validRecord(r) {
			invalid++
			continue
		}
		if s.open.Len() == 0 {
			s.open.Begin(s.buffer(flowbatch.BodySizeHint(s.cfg.BatchSize)), s.header())
		}
		s.open.Add(r)
		if s.open.Len() >= s.cfg.BatchSize {
			s.closeOpenLocked()
			queued = true
		}
	}
	if invalid > 0 {
		s.dropInvalidLocked(invalid)
	}
	return queued
}

// dropInvalidLocked counts n records dropped for lacking addresses or an end time.
func (s *Shipper) dropInvalidLocked(n int) {
	s.countDroppedRecordsLocked(n, "invalid")
	s.counters[CounterInvalidRecords] += uint64(n)
}

// closeOpenLocked queues the open batch, if it holds records.
func (s *Shipper) closeOpenLocked() {
	n := s.open.Len()
	if n == 0 {
		return
	}
	body, err := s.open.End()
	if err != nil {
		s.log.Error("encoding a batch failed; its records are dropped", "err", err)
		s.countDroppedRecordsLocked(n, "encode")
		return
	}
	if free := cap(body) - len(body); free > len(body)+4096 {
		// Mostly empty (a flush of few records): the buffer bound counts bytes held, so keep
		// only those, with room for the header.
		small := append(make([]byte, 0, len(body)+512), body...)
		recycle(body)
		body = small
	}
	s.queueLocked(&outBatch{body: body, records: n})
}

func (s *Shipper) queueLocked(b *outBatch) {
	s.stats.BatchesQueued++
	for _, d := range s.q.push(b) {
		s.dropLocked(d, "buffer_full")
	}
}

// Heartbeat queues an ownership heartbeat for the next batch (a newer one replaces it).
func (s *Shipper) Heartbeat(h flowbatch.Heartbeat) {
	s.mu.Lock()
	s.heartbeat = &h
	s.mu.Unlock()
	kick(s.kickBatch)
}

// AddCounters adds exporter counter increases (ring losses, evictions, ...) to the next batch.
func (s *Shipper) AddCounters(deltas map[string]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range deltas {
		if v != 0 {
			s.counters[k] += v
		}
	}
}

// Stats returns the totals so far.
func (s *Shipper) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.BufferBytes, st.BufferBatches, st.PendingRecords = s.q.bytes, len(s.q.items), len(s.pending)+s.open.Len()
	if len(s.links) > 0 {
		st.Transport = s.links[s.cur].name()
	}
	return st
}

func (s *Shipper) countDroppedRecordsLocked(n int, reason string) {
	s.stats.RecordsDropped += uint64(n)
	s.counters[CounterDroppedRecords] += uint64(n)
	s.m.recordsDropped.WithLabelValues(reason).Add(float64(n))
}

func (s *Shipper) dropLocked(b *outBatch, reason string) {
	s.stats.BatchesDropped++
	s.counters[CounterDroppedBatches]++
	s.m.batchesDropped.WithLabelValues(reason).Inc()
	s.countDroppedRecordsLocked(b.records, reason)
	if b.seq == 0 { // never sent: its counters still have to reach the collector
		for _, c := range b.counters {
			s.counters[c.Name] += c.Value
		}
	}
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (s *Shipper) String() string {
	return fmt.Sprintf("shipper %s boot %s", s.cfg.ExporterID, s.bootID)
}
