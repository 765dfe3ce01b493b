// Package ingest is the collector's entry point for exporter batches: gRPC, HTTPS and UDP
// listeners, validation with a counted rejection per reason, per-exporter rate limits,
// de-duplication by (exporter, boot id, sequence), and a durable hand-off (an fsync'd spool)
// before any acknowledgement. Downstream components read accepted batches in order through
// the Consumer interface.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// Transport names, used as metric labels.
const (
	TransportGRPC  = "grpc"
	TransportHTTPS = "https"
	TransportUDP   = "udp"
)

// Ingest receives, checks and durably stores batches, then feeds them to consumers.
type Ingest struct {
	cfg     Config
	log     *slog.Logger
	clock   func() time.Time
	spool   *spool
	dedupe  *dedupe
	limiter *limiter
	m       *metrics
	logs    *rateLog
	tls     *tlsSetup

	mu        sync.Mutex
	consumers []Consumer
	committed map[string]*atomic.Uint64 // consumer → committed offset (for retention)
	cancel    context.CancelFunc
	group     *errgroup.Group
	addrs     Addrs
	closers   []func()
	stopped   bool
}

// Addrs are the bound listener addresses (useful with port 0).
type Addrs struct{ GRPC, HTTPS, UDP string }

// New opens the spool (rebuilding de-duplication state from it) and prepares the listeners;
// nothing listens until Start.
func New(cfg Config, reg prometheus.Registerer, log *slog.Logger, clock func() time.Time) (*Ingest, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	in := &Ingest{
		cfg: cfg, log: log.With("component", "ingest"), clock: clock,
		dedupe:  newDedupe(cfg.MaxExporterBoots),
		limiter: newLimiter(cfg.ExporterBytesPerSec, cfg.ExporterBurstBytes, cfg.MaxExporterBoots, clock),
	}
	in.logs = newRateLog(in.log, 10*time.Second, clock)
	ts, err := loadTLS(cfg)
	if err != nil {
		return nil, err
	}
	in.tls = ts
	if err := in.loadSnapshot(); err != nil {
		return nil, err
	}
	sp, err := openSpool(cfg.SpoolDir, cfg.SegmentBytes, func(e spoolEntry) { in.dedupe.seen(e.Key) })
	if err != nil {
		return nil, err
	}
	in.spool = sp
	m, err := newMetrics(reg, in)
	if err != nil {
		sp.close()
		return nil, err
	}
	in.m = m
	return in, nil
}

// AddConsumer registers a downstream consumer; call it before Start.
func (in *Ingest) AddConsumer(c Consumer) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.consumers = append(in.consumers, c)
}

// Start opens the configured listeners and starts the consumers. It returns once listening.
func (in *Ingest) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	in.mu.Lock()
	in.cancel, in.group = cancel, g
	consumers := append([]Consumer(nil), in.consumers...)
	in.mu.Unlock()
	starts := []struct {
		addr  string
		start func(context.Context, *errgroup.Group, net.Listener, net.PacketConn) (string, func(), error)
		udp   bool
	}{
		{in.cfg.GRPCListen, in.startGRPC, false},
		{in.cfg.HTTPSListen, in.startHTTPS, false},
		{in.cfg.UDPListen, in.startUDP, true},
	}
	var bound []string
	for _, s := range starts {
		if s.addr == "" {
			bound = append(bound, "")
			continue
		}
		var ln net.Listener
		var pc net.PacketConn
		var err error
		if s.udp {
			pc, err = net.ListenPacket("udp", s.addr)
		} else {
			ln, err = net.Listen("tcp", s.addr)
		}
		if err != nil {
			cancel()
			in.Stop()
			return fmt.Errorf("listening on %s: %w", s.addr, err)
		}
		addr, closer, err := s.start(gctx, g, ln, pc)
		if err != nil {
			cancel()
			in.Stop()
			return err
		}
		in.mu.Lock()
		in.closers = append(in.closers, closer)
		in.mu.Unlock()
		bound = append(bound, addr)
	}
	in.mu.Lock()
	in.addrs = Addrs{GRPC: bound[0], HTTPS: bound[1], UDP: bound[2]}
	in.mu.Unlock()
	for _, c := range consumers {
		g.Go(func() error { return in.runConsumer(gctx, c) })
	}
	g.Go(func() error { return in.runRetention(gctx) })
	in.log.Info("ingest listening", "grpc", bound[0], "https", bound[1], "udp", bound[2], "spool", in.cfg.SpoolDir)
	return nil
}

// Addrs returns the bound addresses after Start.
func (in *Ingest) Addrs() Addrs {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.addrs
}

// Stop closes the listeners, waits for every goroutine and closes the spool. Stopping again
// does nothing.
func (in *Ingest) Stop() error {
	in.mu.Lock()
	if in.stopped {
		in.mu.Unlock()
		return nil
	}
	in.stopped = true
	cancel, g, closers := in.cancel, in.group, in.closers
	in.closers = nil
	in.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	for _, c := range closers {
		c()
	}
	var err error
	if g != nil {
		if gerr := g.Wait(); gerr != nil && !errors.Is(gerr, context.Canceled) {
			err = gerr
		}
	}
	if cerr := in.spool.close(); err == nil {
		err = cerr
	}
	return err
}

// Accept checks one encoded batch and stores it durably. The returned Ack is what the
// exporter gets back; data must not be modified afterwards.
func (in *Ingest) Accept(transport string, data []byte) *flowv1.Ack {
	return in.AcceptMany(transport, [][]byte{data})[0]
}

// AcceptMany is Accept for several batches that share one fsync.
func (in *Ingest) AcceptMany(transport string, datas [][]byte) []*flowv1.Ack {
	start := time.Now()
	acks := make([]*flowv1.Ack, len(datas))
	type stored struct {
		i   int
		k   Key
		sum flowbatch.Summary
		off uint64
	}
	var pending []stored
	for i, data := range datas {
		sum, ack := in.check(transport, data)
		if ack != nil {
			acks[i] = ack
			continue
		}
		k := Key{Exporter: sum.ExporterID, Boot: sum.BootID, Seq: sum.Sequence}
		if ack := in.reserve(transport, k); ack != nil {
			acks[i] = ack
			continue
		}
		off, err := in.spool.write(k, data)
		if err != nil {
			in.dedupe.finish(k, false)
			acks[i] = in.unavailable(transport, k, err)
			continue
		}
		pending = append(pending, stored{i, k, sum, off})
	}
	var err error
	if len(pending) > 0 {
		err = in.spool.syncTo(pending[len(pending)-1].off + 1)
	}
	for _, p := range pending {
		in.dedupe.finish(p.k, err == nil)
		if err != nil {
			acks[p.i] = in.unavailable(transport, p.k, err)
			continue
		}
		in.m.batches.WithLabelValues(transport).Inc()
		in.m.flows.WithLabelValues(transport).Add(float64(p.sum.Records))
		in.m.aggregates.WithLabelValues(transport).Add(float64(p.sum.Aggregates))
		in.m.addExporterCounters(p.sum.Counters)
		acks[p.i] = &flowv1.Ack{Sequence: p.k.Seq, BootId: p.k.Boot, Status: flowv1.Ack_STATUS_ACCEPTED}
	}
	in.m.ackLatency.WithLabelValues(transport).Observe(time.Since(start).Seconds())
	return acks
}

// check applies the size limit, the exporter's rate limit and validation.
func (in *Ingest) check(transport string, data []byte) (flowbatch.Summary, *flowv1.Ack) {
	var none flowbatch.Summary
	if len(data) > in.cfg.Limits.MaxBytes {
		return none, in.rejected(transport, Key{}, &flowbatch.RejectError{
			Reason: flowv1.RejectReason_REJECT_REASON_TOO_LARGE,
			Msg:    fmt.Sprintf("batch of %d bytes exceeds %d", len(data), in.cfg.Limits.MaxBytes)})
	}
	exporter := peekExporterID(data)
	if !in.limiter.allow(exporter, len(data)) {
		return none, in.rejected(transport, Key{Exporter: exporter}, &flowbatch.RejectError{
			Reason: flowv1.RejectReason_REJECT_REASON_RATE_LIMITED, Msg: "exporter over its rate limit; retry later"})
	}
	sum, err := flowbatch.Scan(data, in.cfg.Limits, in.clock())
	if err != nil {
		return none, in.rejected(transport, Key{Exporter: exporter, Boot: sum.BootID, Seq: sum.Sequence}, err)
	}
	return sum, nil
}

// reserve de-duplicates; nil means the batch is new and reserved for storing.
func (in *Ingest) reserve(transport string, k Key) *flowv1.Ack {
	switch in.dedupe.reserve(k) {
	case verdictDuplicate:
		in.m.duplicates.WithLabelValues(transport).Inc()
		return &flowv1.Ack{Sequence: k.Seq, BootId: k.Boot, Status: flowv1.Ack_STATUS_DUPLICATE}
	case verdictStale:
		return in.rejected(transport, k, &flowbatch.RejectError{
			Reason: flowv1.RejectReason_REJECT_REASON_STALE_SEQUENCE, Msg: "sequence too old to de-duplicate"})
	case verdictPending:
		return in.rejected(transport, k, &flowbatch.RejectError{
			Reason: flowv1.RejectReason_REJECT_REASON_UNAVAILABLE, Msg: "the same batch is being stored; retry"})
	}
	return nil
}

func (in *Ingest) unavailable(transport string, k Key, err error) *flowv1.Ack {
	in.logs.error("spool", "storing batch failed", "err", err)
	return in.rejected(transport, k, &flowbatch.RejectError{
		Reason: flowv1.RejectReason_REJECT_REASON_UNAVAILABLE, Msg: "cannot store the batch now; retry"})
}

// rejected counts and logs (rate-limited) a refusal; k holds what is known of the batch.
func (in *Ingest) rejected(transport string, k Key, err error) *flowv1.Ack {
	reason := flowbatch.ReasonOf(err)
	name := flowbatch.ReasonName(reason)
	in.m.rejected.WithLabelValues(transport, name).Inc()
	in.logs.warn(name, "batch rejected", "transport", transport, "exporter", k.Exporter, "err", err)
	return &flowv1.Ack{Status: flowv1.Ack_STATUS_REJECTED, Reason: reason, Message: err.Error(),
		Retryable: retryable(reason), Sequence: k.Seq, BootId: k.Boot}
}

func retryable(r flowv1.RejectReason) bool {
	return r == flowv1.RejectReason_REJECT_REASON_RATE_LIMITED || r == flowv1.RejectReason_REJECT_REASON_UNAVAILABLE
}

// Missing returns, per exporter, how many sequence numbers never arrived between the lowest
// and highest stored (over UDP: the datagrams lost on the way).
func (in *Ingest) Missing() map[string]uint64 { return in.dedupe.missing() }
