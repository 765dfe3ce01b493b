package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowscope/flowscope/internal/collector/ingest"
)

func init() {
	register("collector", "receive exporter batches over gRPC, HTTPS and UDP, store them durably, hand them on", runCollector)
}

func runCollector(ctx context.Context, args []string) error {
	fs := newFlagSet("collector")
	cfg := ingest.DefaultConfig()
	cfg.BindFlags(fs)
	output := fs.String("output", "store", "store: attribute, aggregate and store what is ingested, serve the API and console on --listen; jsonl: only print ingested batches (to stdout); none: only ingest")
	var pf pipelineFlags
	pf.bind(fs)
	metricsListen := fs.String("metrics-listen", "127.0.0.1:7409", "address of /metrics (empty: off)")
	readyFile := fs.String("ready-file", "", "write the bound listen addresses (JSON) to this file once listening")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *output != "none" && *output != "jsonl" && *output != "store" {
		return usageError{fmt.Errorf("--output must be store, jsonl or none, not %q", *output)}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	if *output == "store" {
		explicitSpool := false
		fs.Visit(func(fl *flag.Flag) { explicitSpool = explicitSpool || fl.Name == "spool-dir" })
		return runCollectorPipeline(ctx, cfg, explicitSpool, pf, *readyFile, log)
	}
	reg := prometheus.NewRegistry()
	in, err := ingest.New(cfg, reg, log, time.Now)
	if err != nil {
		return err
	}
	if *output == "jsonl" {
		in.AddConsumer(ingest.NewJSONL(os.Stdout))
	}
	if err := in.Start(ctx); err != nil {
		return err
	}
	stopMetrics, err := serveMetrics(*metricsListen, reg, log)
	if err != nil {
		in.Stop()
		return err
	}
	if *readyFile != "" {
		if err := writeCollectorReady(*readyFile, in.Addrs()); err != nil {
			in.Stop()
			stopMetrics()
			return err
		}
	}
	<-ctx.Done()
	stopMetrics()
	return in.Stop()
}

func writeCollectorReady(path string, a ingest.Addrs) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("writing ready file: %w", err)
	}
	return os.Rename(tmp, path)
}

// serveMetrics serves /metrics of reg on addr until the returned stop is called (for the
// commands that serve no API: the exporter, and the collector without the store).
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server failed", "err", err)
		}
	}()
	return func() { srv.Close(); <-done }, nil
}
