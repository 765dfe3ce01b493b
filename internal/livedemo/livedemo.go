// Package livedemo runs the synthetic demo cluster (internal/demo) against a real collector
// pipeline in live time: first a stretch of history replayed on a simulated clock (so the
// console has something to show at once), then continuously, each node's batches travelling
// through a real transport.Shipper to the pipeline's gRPC ingest.
package livedemo

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/collector/kube"
	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/demo"
	"github.com/flowscope/flowscope/internal/flowbatch"
	"github.com/flowscope/flowscope/internal/transport"
)

// Clock is the collector's clock in demo mode: simulated while history is replayed, the wall
// clock afterwards. It never goes back.
type Clock struct {
	mu   sync.Mutex
	sim  time.Time
	live bool
	wall func() time.Time
}

// NewClock returns a clock that reads start until Advance or GoLive.
func NewClock(start time.Time, wall func() time.Time) *Clock {
	return &Clock{sim: start, wall: wall}
}

// Now returns the current time of the collector.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live {
		return c.wall()
	}
	return c.sim
}

func (c *Clock) set(t time.Time) {
	c.mu.Lock()
	c.sim = t
	c.mu.Unlock()
}

func (c *Clock) goLive() {
	c.mu.Lock()
	c.live = true
	c.mu.Unlock()
}

// Target is the collector side the demo feeds.
type Target interface {
	// Deliver hands one batch straight to attribution (history replay only).
	Deliver(b *flowbatch.Batch)
	// Flush decides the records due by the clock's now and writes them.
	Flush(ctx context.Context) error
	Tracker() *kube.Tracker
	Ownership() *ownership.Store
}

// Config configures a live demo.
type Config struct {
	Cluster  demo.Config   // Start is set by Run
	History  time.Duration // simulated time replayed before going live
	GRPCAddr string        // the pipeline's gRPC ingest (host:port)
	Tick     time.Duration // how often live time advances (default 100 ms)
	Registry prometheus.Registerer
	Log      *slog.Logger
}

// ClusterConfig is the demo cluster of `flowscope standalone --demo`: the default scenario,
// its dependency failing three minutes before the history ends (so that for the first
// minutes the last five show it failing against a healthy baseline).
func ClusterConfig(history time.Duration) demo.Config {
	c := demo.DefaultConfig()
	c.FailAfter = max(history-3*time.Minute, time.Minute)
	c.FlowsPerSecond = 20
	return c
}

// Run replays cfg.History on clock, switches clock to live time, then feeds the pipeline
// through one shipper per node until ctx ends. ready is called once live, with the moment the
// simulation started (a whole minute, so its scripted failure starts on a minute too).
func Run(ctx context.Context, cfg Config, clock *Clock, t Target, ready func(start time.Time)) error {
	if cfg.Tick <= 0 {
		cfg.Tick = 100 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	cc := cfg.Cluster
	cc.Start = clock.wall().Add(-cfg.History).Truncate(time.Minute)
	clock.set(cc.Start)
	cl, err := demo.New(cc)
	if err != nil {
		return err
	}
	if err := replay(ctx, cl, clock, t); err != nil {
		return err
	}
	clock.goLive()
	cfg.Log.Info("demo history replayed; going live", "component", "demo", "history", cfg.History)
	if ready != nil {
		ready(cc.Start)
	}
	ships := &shippers{cfg: cfg, m: map[string]*transport.Shipper{}}
	defer ships.stop()
	tick := time.NewTicker(cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := clock.Now()
		for _, ev := range cl.Advance(now) {
			if ev.Kube != nil {
				demo.ApplyKube(t.Tracker(), ev.Kube)
				continue
			}
			if err := ships.send(ctx, ev.Batch); err != nil {
				return err
			}
		}
		t.Ownership().SetKubeSynced(now)
	}
}

// replay runs the cluster from its start to the wall clock's now on the simulated clock,
// handing batches straight to attribution and flushing every simulated second.
func replay(ctx context.Context, cl *demo.Cluster, clock *Clock, t Target) error {
	const step = 100 * time.Millisecond
	now := clock.Now()
	lastFlush := now
	for now.Add(step).Before(clock.wall()) {
		if err := ctx.Err(); err != nil {
			return err
		}
		now = now.Add(step)
		clock.set(now)
		for _, ev := range cl.Advance(now) {
			if ev.Kube != nil {
				demo.ApplyKube(t.Tracker(), ev.Kube)
			} else {
				t.Deliver(ev.Batch)
			}
		}
		t.Ownership().SetKubeSynced(now)
		if now.Sub(lastFlush) >= time.Second {
			lastFlush = now
			if err := t.Flush(ctx); err != nil {
				return err
			}
			if now.Second() == 0 {
				t.Ownership().Compact(now)
			}
		}
	}
	return nil
}

// shippers holds one transport.Shipper per demo exporter.
type shippers struct {
	cfg Config
	m   map[string]*transport.Shipper
}

func (s *shippers) send(ctx context.Context, b *flowbatch.Batch) error {
	sh, ok := s.m[b.ExporterID]
	if !ok {
		host, port, err := net.SplitHostPort(s.cfg.GRPCAddr)
		if err != nil {
			return fmt.Errorf("demo: collector address %q: %w", s.cfg.GRPCAddr, err)
		}
		tc := transport.DefaultConfig()
		tc.Collector, tc.Transport, tc.InsecurePlaintext = host, transport.GRPC, true
		tc.GRPCPort, _ = strconv.Atoi(port)
		tc.ExporterID, tc.NodeName = b.ExporterID, b.NodeName
		tc.FlushInterval = 500 * time.Millisecond
		reg := prometheus.WrapRegistererWith(prometheus.Labels{"exporter": b.ExporterID}, s.cfg.Registry)
		if sh, err = transport.New(tc, reg, s.cfg.Log, time.Now); err != nil {
			return fmt.Errorf("demo: shipper of %s: %w", b.ExporterID, err)
		}
		if err := sh.Start(ctx); err != nil {
			return fmt.Errorf("demo: starting the shipper of %s: %w", b.ExporterID, err)
		}
		s.m[b.ExporterID] = sh
	}
	if b.Heartbeat != nil {
		sh.Heartbeat(*b.Heartbeat)
	}
	if len(b.Records) > 0 {
		sh.Write(b.Records)
	}
	return nil
}

func (s *shippers) stop() {
	for _, sh := range s.m {
		sh.Stop()
	}
}
