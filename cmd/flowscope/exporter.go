package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/bits"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/exporter"
	"github.com/flowscope/flowscope/internal/exporter/adapt"
	"github.com/flowscope/flowscope/internal/exporter/flowtable"
	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/transport"
)

func init() {
	register("exporter", "capture every TCP flow of this host from kernel tracepoints", runExporter)
}

type exporterFlags struct {
	output, hook, metrics, logLevel string
	cpuProfile                      string
	interval, summary, poll         time.Duration
	slots, ring                     uint
	maxTracked                      int
	cpuBudget                       float64
	processInfo, bpfStats           bool
}

func (f *exporterFlags) bind(fs interface {
	StringVar(*string, string, string, string)
	DurationVar(*time.Duration, string, time.Duration, string)
	UintVar(*uint, string, uint, string)
	IntVar(*int, string, int, string)
	Float64Var(*float64, string, float64, string)
	BoolVar(*bool, string, bool, string)
}) {
	fs.StringVar(&f.output, "output", "jsonl", "where flow records go: jsonl (one JSON object a line on standard output) or collector (the transport, see --collector)")
	fs.StringVar(&f.hook, "hook", "auto", "inet_sock_set_state hook: auto, tp_btf, raw_tp or tracepoint")
	fs.StringVar(&f.metrics, "metrics-listen", "127.0.0.1:9433", "address of /metrics (empty: off)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&f.interval, "interim-interval", 30*time.Second, "interim records for connections open longer than this (≥ 1s)")
	fs.DurationVar(&f.summary, "summary-interval", 10*time.Second, "how often a summary line of counters is written (0: never)")
	fs.DurationVar(&f.poll, "poll-interval", 100*time.Millisecond, "how often the kernel ring buffer is drained (10ms–5s)")
	fs.UintVar(&f.slots, "slots", 65536, "per-socket start slots in the kernel, a power of two (a collision loses the older start, counted)")
	fs.UintVar(&f.ring, "ring-bytes", 4<<20, "kernel ring buffer size, a power of two ≥ 4096 (full: records dropped, counted)")
	fs.Float64Var(&f.cpuBudget, "cpu-budget", adapt.DefaultBudgetFraction, "share of the node's CPU the exporter may use before it folds short flows into aggregates (with --output=collector)")
	fs.IntVar(&f.maxTracked, "max-tracked", 262144, "open connections tracked for interim records (beyond: counted, reported at close only)")
	fs.BoolVar(&f.processInfo, "process-info", true, "capture pid and comm of client sockets at connect() (cgroup hooks)")
	fs.StringVar(&f.cpuProfile, "cpu-profile", "", "write a Go CPU profile of the exporter to this file")
	fs.BoolVar(&f.bpfStats, "bpf-stats", false, "enable the kernel's BPF run-time statistics while running (costs ~20-40 ns a program run)")
}

func (f *exporterFlags) validate() error {
	var errs []error
	if f.output != "jsonl" && f.output != "collector" {
		errs = append(errs, fmt.Errorf("--output must be jsonl or collector, not %q", f.output))
	}
	switch tracer.Hook(f.hook) {
	case tracer.HookAuto, tracer.HookTPBTF, tracer.HookRawTP, tracer.HookTracepoint:
	default:
		errs = append(errs, fmt.Errorf("--hook must be auto, tp_btf, raw_tp or tracepoint, not %q", f.hook))
	}
	if f.interval < time.Second {
		errs = append(errs, fmt.Errorf("--interim-interval must be at least 1s, not %v", f.interval))
	}
	if f.poll < 10*time.Millisecond || f.poll > 5*time.Second {
		errs = append(errs, fmt.Errorf("--poll-interval must be within 10ms–5s, not %v", f.poll))
	}
	if f.summary < 0 {
		errs = append(errs, fmt.Errorf("--summary-interval must not be negative"))
	}
	if f.slots < 64 || f.slots > 1<<24 || bits.OnesCount(f.slots) != 1 {
		errs = append(errs, fmt.Errorf("--slots must be a power of two within 64–16777216, not %d", f.slots))
	}
	if f.ring < 4096 || f.ring > 1<<30 || bits.OnesCount(f.ring) != 1 {
		errs = append(errs, fmt.Errorf("--ring-bytes must be a power of two within 4096–1073741824, not %d", f.ring))
	}
	if f.cpuBudget <= 0 || f.cpuBudget > 1 {
		errs = append(errs, fmt.Errorf("--cpu-budget must be within (0, 1], not %v", f.cpuBudget))
	}
	if f.maxTracked < 1 {
		errs = append(errs, fmt.Errorf("--max-tracked must be positive"))
	}
	return errors.Join(errs...)
}

func runExporter(ctx context.Context, args []string) error {
	var f exporterFlags
	fs := newFlagSet("exporter")
	f.bind(fs)
	tcfg := transport.DefaultConfig()
	tcfg.BindFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return usageError{err}
	}
	if f.output == "collector" {
		if err := tcfg.Validate(); err != nil {
			return usageError{err}
		}
	}
	log, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	log = log.With("component", "exporter")
	if miss, err := exporter.MissingCapabilities(); err != nil {
		return err
	} else if len(miss) > 0 {
		return fmt.Errorf("the exporter needs root or these capabilities: %s (missing: %s)",
			"CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH", strings.Join(miss, ", "))
	}
	explicit := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { explicit[fl.Name] = true })
	trcfg := tracer.Config{Hook: tracer.Hook(f.hook), ProcessInfo: f.processInfo}
	if explicit["slots"] {
		trcfg.Slots = uint32(f.slots)
	}
	if explicit["ring-bytes"] {
		trcfg.RingBytes = uint32(f.ring)
	}
	summary := f.summary
	if summary == 0 {
		summary = -1
	}
	opts := exporter.NodeOptions{
		Tracer: trcfg,
		Loop: exporter.Config{Table: flowtable.Config{Interval: f.interval, MaxConns: f.maxTracked, ResetEvents: true},
			PollInterval: f.poll, SummaryEvery: summary},
		Out: os.Stdout, CPUBudget: f.cpuBudget, BPFStats: f.bpfStats, Registry: prometheus.NewRegistry(), Log: log,
		ReleaseStartup: true, // this process is only an exporter
	}
	if f.output == "collector" {
		opts.Ship = &tcfg
	}
	stopMetrics, err := serveMetrics(f.metrics, opts.Registry, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return fmt.Errorf("creating the CPU profile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("starting the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if os.Getenv("GOGC") == "" {
		// The loop allocates nothing per record, so collecting at 1.5× the live heap instead of
		// 2× costs little CPU and keeps the resident set near what the tracked sockets need.
		debug.SetGCPercent(50)
	}
	return exporter.RunNode(ctx, opts)
}
