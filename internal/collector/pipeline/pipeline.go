// Package pipeline assembles the collector's parts into one component: ingest (gRPC, HTTPS,
// UDP, durable spool) → attribution (ownership store, Kubernetes tracker, named networks) →
// edge metrics → store, and the HTTP server of the JSON API, /metrics and (optionally) the
// console. `flowscope standalone` runs it; `flowscope collector` is to run it the same way
// (docs/console.md).
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/flowscope/flowscope/internal/api"
	"github.com/flowscope/flowscope/internal/collector/aggregate"
	"github.com/flowscope/flowscope/internal/collector/attribute"
	"github.com/flowscope/flowscope/internal/collector/ingest"
	"github.com/flowscope/flowscope/internal/collector/kube"
	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flowbatch"
	"github.com/flowscope/flowscope/internal/store"
)

// Config configures the pipeline. Zero values take the parts' defaults.
type Config struct {
	Ingest    ingest.Config
	Ownership ownership.Config
	Attribute attribute.Config
	Kube      kube.Config
	Networks  *ownership.Networks // named CIDRs (nil: none)
	// MaxEdgeMetrics bounds the flowscope_edge_* series (0: 2000; negative: no edge metrics).
	MaxEdgeMetrics int
	// HTTPListen is the address of the API, /metrics and the console ("": no HTTP server).
	HTTPListen string
	// Console, when set, serves every path outside /api/ and /metrics.
	Console http.Handler
	// Debug serves Go's profiles under /debug/pprof/ (off by default).
	Debug bool
	// OpenMinutes, when its Grace is set, makes edge queries include the minutes the store
	// has not written yet (it must be the store's aggregate.Config; standalone sets it). Zero:
	// the API answers from the store alone.
	OpenMinutes aggregate.Config
	// CompactEvery is how often the ownership store drops ranges past its horizon (default 1 min).
	CompactEvery time.Duration
	Now          func() time.Time
	Registry     *prometheus.Registry
	Log          *slog.Logger
}

// Store is what the pipeline writes attributed connections to and the API reads from.
type Store interface {
	store.Sink
	store.Querier
}

// runner is a store with its own maintenance loop (the DuckDB store's Run).
type runner interface {
	Run(ctx context.Context) error
}

// Pipeline is the running collector. New is inert; Start listens and starts every part; Stop
// stops them in reverse order.
type Pipeline struct {
	cfg     Config
	log     *slog.Logger
	st      Store
	in      *ingest.Ingest
	owners  *ownership.Store
	tracker *kube.Tracker
	attr    *attribute.Attributor
	cons    *attribute.Consumer
	handler http.Handler
	live    *liveEdges

	ln     net.Listener
	srv    *http.Server
	cancel context.CancelFunc
	group  *errgroup.Group
}

// New builds the parts over st. Nothing runs until Start.
func New(cfg Config, st Store) (*Pipeline, error) {
	if st == nil {
		return nil, errors.New("pipeline: a store is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Ownership.Horizon == 0 {
		cfg.Ownership = ownership.DefaultConfig()
	}
	if cfg.MaxEdgeMetrics == 0 {
		cfg.MaxEdgeMetrics = 2000
	}
	if cfg.CompactEvery <= 0 {
		cfg.CompactEvery = time.Minute
	}
	p := &Pipeline{cfg: cfg, st: st, log: cfg.Log.With("component", "pipeline")}
	var err error
	if p.owners, err = ownership.New(cfg.Ownership, cfg.Now, cfg.Registry); err != nil {
		return nil, fmt.Errorf("pipeline: ownership store: %w", err)
	}
	if cfg.Networks != nil {
		p.owners.SetNetworks(cfg.Networks)
	}
	p.tracker = kube.NewTracker(cfg.Kube, p.owners, cfg.Now, cfg.Log)
	var sink store.Sink = st
	if cfg.MaxEdgeMetrics > 0 {
		em := aggregate.NewEdgeMetrics(cfg.Registry, cfg.MaxEdgeMetrics)
		sink = aggregate.MetricsSink{Next: st, Metrics: em}
	}
	if cfg.OpenMinutes.Grace > 0 {
		p.live = newLiveEdges(cfg.OpenMinutes, cfg.Now)
		sink = p.live.sink(sink)
	}
	if p.attr, err = attribute.New(cfg.Attribute, p.owners, sink, cfg.Now, cfg.Registry, cfg.Log); err != nil {
		return nil, fmt.Errorf("pipeline: attribution: %w", err)
	}
	if p.in, err = ingest.New(cfg.Ingest, cfg.Registry, cfg.Log, cfg.Now); err != nil {
		return nil, fmt.Errorf("pipeline: ingest: %w", err)
	}
	p.cons = attribute.NewConsumer(p.attr)
	p.in.AddConsumer(p.cons)
	p.handler = p.buildHandler()
	return p, nil
}

func (p *Pipeline) buildHandler() http.Handler {
	mux := http.NewServeMux()
	var q store.Querier = p.st
	if p.live != nil {
		q = liveQuerier{Querier: p.st, live: p.live}
	}
	mux.Handle("/api/", api.New(api.Config{Store: q, Now: p.cfg.Now, Logger: p.cfg.Log}))
	mux.Handle("/metrics", promhttp.HandlerFor(p.cfg.Registry, promhttp.HandlerOpts{Registry: p.cfg.Registry}))
	if p.cfg.Console != nil {
		mux.Handle("/", p.cfg.Console)
	}
	if p.cfg.Debug {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	return mux
}

// Handler is the HTTP handler of the API, /metrics and the console.
func (p *Pipeline) Handler() http.Handler { return p.handler }

// Tracker is the Kubernetes tracker that informers (or the demo) feed.
func (p *Pipeline) Tracker() *kube.Tracker { return p.tracker }

// Ownership is the IP ownership store.
func (p *Pipeline) Ownership() *ownership.Store { return p.owners }

// Start listens (HTTP first, so that a port already taken fails before anything runs), then
// starts the ingest, attribution, the store's maintenance and ownership compaction.
func (p *Pipeline) Start(ctx context.Context) error {
	if p.cfg.HTTPListen != "" {
		ln, err := net.Listen("tcp", p.cfg.HTTPListen)
		if err != nil {
			return fmt.Errorf("listening for the API on %s: %w", p.cfg.HTTPListen, err)
		}
		p.ln = ln
	}
	ctx, cancel := context.WithCancel(ctx)
	if err := p.in.Start(ctx); err != nil {
		cancel()
		p.closeListener()
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	p.cancel, p.group = cancel, g
	g.Go(func() error { return p.attr.Run(gctx) })
	if r, ok := p.st.(runner); ok {
		g.Go(func() error { return r.Run(gctx) })
	}
	g.Go(func() error { return p.compact(gctx) })
	if p.ln != nil {
		p.srv = &http.Server{Handler: p.handler, ReadHeaderTimeout: 10 * time.Second}
		g.Go(func() error {
			if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving HTTP: %w", err)
			}
			return nil
		})
	}
	p.log.Info("pipeline running", "http", p.HTTPAddr(), "grpc", p.in.Addrs().GRPC)
	return nil
}

func (p *Pipeline) closeListener() {
	if p.ln != nil {
		_ = p.ln.Close()
	}
}

// compact keeps the ownership store within its horizon and tells it the (absent or
// demo-fed) Kubernetes view is current.
func (p *Pipeline) compact(ctx context.Context) error {
	t := time.NewTicker(p.cfg.CompactEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			p.owners.Compact(p.cfg.Now())
		}
	}
}

// Addrs are the ingest's bound addresses.
func (p *Pipeline) Addrs() ingest.Addrs { return p.in.Addrs() }

// HTTPAddr is the bound address of the HTTP server ("" when off).
func (p *Pipeline) HTTPAddr() string {
	if p.ln == nil {
		return ""
	}
	return p.ln.Addr().String()
}

// Stop stops the HTTP server, the ingest, then attribution (flushing what is due) and the
// store's loop, in reverse order of Start.
func (p *Pipeline) Stop() error {
	var errs []error
	if p.srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = p.srv.Shutdown(sctx)
		cancel()
	}
	errs = append(errs, p.in.Stop())
	if p.cancel != nil {
		p.cancel()
		errs = append(errs, p.group.Wait())
	}
	errs = append(errs, p.attr.Flush(context.Background()))
	return errors.Join(errs...)
}

// Deliver hands one batch straight to attribution, bypassing the ingest (the demo's replay of
// history on a simulated clock uses it; everything else arrives through the ingest).
func (p *Pipeline) Deliver(b *flowbatch.Batch) { p.cons.Apply(b) }

// Flush decides the records due by now and writes them to the store.
func (p *Pipeline) Flush(ctx context.Context) error { return p.attr.Flush(ctx) }
