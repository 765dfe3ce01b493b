package demo

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/exporter/adapt"
	"github.com/flowscope/flowscope/internal/flowbatch"
	"github.com/flowscope/flowscope/internal/transport"
)

// shippers are the demo's exporters' real transport: one Shipper per node sending over gRPC on
// loopback to the collector ingest (see startSpool), whose consumer feeds attribution.
type shippers struct {
	sp       *spool
	byID     map[string]*transport.Shipper
	port     int
	clock    func() time.Time
	ctx      context.Context
	registry *prometheus.Registry
	opts     Options
	sentHB   int64 // heartbeats handed to Shippers
	sentRecs int64 // records handed to Shippers
}

func startShippers(ctx context.Context, opts Options, col *collector) (*shippers, error) {
	sp, err := startSpool(ctx, opts, col, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	_, port, err := net.SplitHostPort(sp.in.Addrs().GRPC)
	if err != nil {
		sp.stop()
		return nil, fmt.Errorf("demo: ingest address: %w", err)
	}
	s := &shippers{sp: sp, byID: map[string]*transport.Shipper{}, clock: col.now, ctx: ctx, opts: opts}
	s.port, _ = strconv.Atoi(port)
	return s, nil
}

func (s *shippers) shipper(b *flowbatch.Batch) (*transport.Shipper, error) {
	if sh := s.byID[b.ExporterID]; sh != nil {
		return sh, nil
	}
	cfg := transport.DefaultConfig()
	cfg.GRPCPort, cfg.Transport, cfg.InsecurePlaintext = s.port, transport.GRPC, true
	cfg.ExporterID, cfg.NodeName = b.ExporterID, b.NodeName
	cfg.FlushInterval, cfg.RetryMin = 10*time.Millisecond, 5*time.Millisecond
	cfg.Instance = &adapt.Instance{NodeCores: 4, Cores: 4, MemoryBytes: 8 << 30, NodeMemory: 8 << 30, CgroupVersion: 2}
	// Each exporter registers its metrics in a registry of its own (they would run on their
	// nodes) and stays quiet (its shutdown retries are noise here).
	sh, err := transport.New(cfg, prometheus.NewRegistry(), slog.New(slog.DiscardHandler), s.clock)
	if err != nil {
		return nil, err
	}
	if err := sh.Start(s.ctx); err != nil {
		return nil, err
	}
	s.byID[b.ExporterID] = sh
	return sh, nil
}

// deliver hands the batches' records and heartbeats to their exporters' Shippers and waits
// until the collector acknowledged and attribution consumed them.
func (s *shippers) deliver(bs []*flowbatch.Batch) error {
	if len(bs) == 0 {
		return nil
	}
	queued := map[*transport.Shipper]bool{} // a Shipper keeps only its newest pending heartbeat
	for _, b := range bs {
		sh, err := s.shipper(b)
		if err != nil {
			return err
		}
		if b.Heartbeat != nil {
			if queued[sh] {
				if err := s.wait(); err != nil {
					return err
				}
				clear(queued)
			}
			sh.Heartbeat(*b.Heartbeat)
			queued[sh] = true
			s.sentHB++
		}
		if len(b.Records) > 0 {
			sh.Write(b.Records)
			s.sentRecs += int64(len(b.Records))
		}
	}
	return s.wait()
}

// wait returns once everything handed to the Shippers was acknowledged and consumed.
func (s *shippers) wait() error {
	deadline := time.Now().Add(30 * time.Second)
	for !s.settled() {
		if time.Now().After(deadline) {
			var st []transport.Stats
			for _, sh := range s.byID {
				st = append(st, sh.Stats())
			}
			return fmt.Errorf("demo: the exporters' batches were not acknowledged and consumed within 30 s (consumed %d, shippers %+v)", s.sp.consumed.Load(), st)
		}
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}

// settled reports whether attribution consumed every record and heartbeat handed over.
func (s *shippers) settled() bool {
	return s.sp.records.Load() >= s.sentRecs && s.sp.heartbeats.Load() >= s.sentHB
}

func (s *shippers) stop() {
	for _, sh := range s.byID {
		sh.Stop()
	}
	s.sp.stop()
}
