package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/flowscope/flowscope/internal/demo"
)

func init() {
	register("demo", "run a synthetic cluster (pod churn, IP reuse, late heartbeats and events) through a real collector and verify attribution", runDemo)
}

func runDemo(ctx context.Context, args []string) error {
	fs := newFlagSet("demo")
	cfg := demo.DefaultConfig()
	duration := fs.Duration("duration", 10*time.Minute, "simulated time during which traffic is generated")
	verify := fs.Bool("verify", false, "compare with the ground truth: print misattributed flows, unattributed share by reason and joined share; exit 1 on any misattribution")
	ingest := fs.String("ingest", "grpc", "how batches reach attribution: grpc (exporter Shipper → collector ingest on loopback), spool (ingest without the network) or direct")
	truthFile := fs.String("truth", "", "write the ground truth of every connection (JSON lines) to this file")
	connsFile := fs.String("output", "", "write the attributed connections (JSON lines) to this file")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "nodes")
	fs.IntVar(&cfg.Workloads, "workloads", cfg.Workloads, "workloads (Deployments and StatefulSets)")
	fs.IntVar(&cfg.Replicas, "replicas", cfg.Replicas, "pods per workload")
	fs.Float64Var(&cfg.FlowsPerSecond, "flows-per-second", cfg.FlowsPerSecond, "new connections per simulated second")
	fs.Float64Var(&cfg.ReusePerMinute, "reuse-per-minute", cfg.ReusePerMinute, "share of pod IPs freed and given to another workload per minute")
	fs.DurationVar(&cfg.ReuseWithin, "reuse-within", cfg.ReuseWithin, "a freed IP is handed out again within this")
	fs.DurationVar(&cfg.HeartbeatEvery, "heartbeat-every", cfg.HeartbeatEvery, "exporters' heartbeat period")
	fs.DurationVar(&cfg.HeartbeatDelay, "heartbeat-delay", cfg.HeartbeatDelay, "heartbeats arrive up to this late")
	fs.Float64Var(&cfg.HeartbeatLoss, "heartbeat-loss", cfg.HeartbeatLoss, "share of heartbeats lost")
	fs.DurationVar(&cfg.KubeDelay, "kube-delay", cfg.KubeDelay, "Kubernetes events arrive up to this late")
	fs.DurationVar(&cfg.ClockSkew, "clock-skew", cfg.ClockSkew, "nodes' clocks are off by up to this")
	fs.DurationVar(&cfg.FailAfter, "fail-after", cfg.FailAfter, "a dependency starts refusing connections after this (0: never)")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	if *duration <= 0 || *duration > 7*24*time.Hour {
		return usageError{fmt.Errorf("--duration must be within (0, 168h]")}
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	cfg.Start = time.Now().UTC().Truncate(time.Second)
	res, err := demo.Run(ctx, demo.Options{Cluster: cfg, Duration: *duration, Ingest: *ingest, Log: log})
	if err != nil {
		return err
	}
	if *connsFile != "" {
		if err := writeJSONLines(*connsFile, len(res.Conns), func(i int) any { return res.Conns[i] }); err != nil {
			return err
		}
	}
	if *truthFile != "" {
		truth := res.Truth.Conns()
		if err := writeJSONLines(*truthFile, len(truth), func(i int) any { return truth[i] }); err != nil {
			return err
		}
	}
	printReport(os.Stdout, res)
	if *verify && len(res.Report.Misattributed) > 0 {
		return exitError{1, fmt.Errorf("%d misattributed endpoints", len(res.Report.Misattributed))}
	}
	return nil
}

func printReport(w io.Writer, res *demo.Result) {
	r := res.Report
	fmt.Fprintf(w, "connections: %d written, %d true (%d attributable), %d IPs reused\n", r.Conns, r.Truth, r.Attributable, res.Reused)
	fmt.Fprintf(w, "misattributed: %d\n", len(r.Misattributed))
	for _, m := range r.Misattributed {
		fmt.Fprintf(w, "  %s\n", m)
	}
	fmt.Fprintf(w, "attributed: %.4f%% of attributable connections (both ends named)\n", 100*r.AttributedShare())
	reasons := make([]string, 0, len(r.Unattributed))
	for k := range r.Unattributed {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	for _, k := range reasons {
		fmt.Fprintf(w, "  unattributed %-9s %d endpoints (%.4f%% of connections)\n", k, r.Unattributed[k], 100*float64(r.Unattributed[k])/float64(max(1, r.Conns)))
	}
	fmt.Fprintf(w, "joined: %d of %d connections observed at both ends (%.4f%%), %d disagreements\n", r.Joined, r.BothObserved, 100*r.JoinedShare(), r.Disagreements)
	if len(r.Missing) > 0 || r.Unknown > 0 {
		fmt.Fprintf(w, "accounting: %d true connections never written, %d written connections unknown\n", len(r.Missing), r.Unknown)
	}
}

func writeJSONLines(path string, n int, item func(int) any) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	enc := json.NewEncoder(f)
	for i := range n {
		if err := enc.Encode(item(i)); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
