//go:build !noduckdb

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flowscope/flowscope/internal/collector/ingest"
	"github.com/flowscope/flowscope/internal/collector/kube"
	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/collector/pipeline"
	"github.com/flowscope/flowscope/internal/store/duckdb"
	"github.com/flowscope/flowscope/web"
)

// runCollectorPipeline runs the whole collector: ingest → attribution → aggregation → the
// embedded store, with the API and the console.
func runCollectorPipeline(ctx context.Context, icfg ingest.Config, explicitSpool bool, f pipelineFlags, readyFile string, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	if !explicitSpool {
		icfg.SpoolDir = filepath.Join(f.dataDir, "spool")
	}
	st, err := duckdb.Open(ctx, duckdb.Config{Dir: filepath.Join(f.dataDir, "store"), MemoryLimit: f.memory, Retention: f.retention.r, Logger: log, Registry: reg})
	if errors.Is(err, duckdb.ErrNewerSchema) {
		return fmt.Errorf("data directory %s was written by a newer flowscope; use that version or another --data-dir: %w", f.dataDir, err)
	}
	if err != nil {
		return fmt.Errorf("opening the store in %s: %w", f.dataDir, err)
	}
	defer st.Close()
	cfg := pipeline.Config{Ingest: icfg, HTTPListen: f.listen, Debug: f.pprof, Registry: reg, Log: log,
		Console: web.Handler(func() web.Settings { return web.Settings{Mode: "live"} })}
	cfg.Attribute.Window = f.window
	cfg.Kube = f.kubeConfig()
	p, err := pipeline.New(cfg, st)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if f.networks != "" {
		nf := ownership.NewNetworkFile(f.networks, p.Ownership(), log)
		if err := nf.Load(); err != nil {
			return usageError{err}
		}
		g.Go(func() error { return nf.Run(gctx, 10*time.Second) })
	}
	client, err := kubeClient(f)
	if err != nil {
		return usageError{err}
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	defer p.Stop()
	if client != nil {
		src := kube.NewSource(client, p.Tracker(), p.Ownership(), time.Now, log, 0)
		g.Go(func() error { return src.Run(gctx) })
	}
	if readyFile != "" {
		if err := writeCollectorReady(readyFile, p.Addrs()); err != nil {
			return err
		}
	}
	log.Info("collector running", "component", "collector", "api", "http://"+p.HTTPAddr()+"/", "grpc", p.Addrs().GRPC)
	<-gctx.Done()
	return g.Wait()
}

// kubeClient connects to the Kubernetes API when asked to (nil, nil otherwise).
func kubeClient(f pipelineFlags) (kubernetes.Interface, error) {
	var rc *rest.Config
	var err error
	switch {
	case f.inCluster && f.kubeconfig != "":
		return nil, errors.New("--kubeconfig and --kube-in-cluster exclude each other")
	case f.inCluster:
		rc, err = rest.InClusterConfig()
	case f.kubeconfig != "":
		rc, err = clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the Kubernetes client configuration: %w", err)
	}
	return kubernetes.NewForConfig(rc)
}
