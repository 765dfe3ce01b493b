//go:build !noduckdb

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/flowscope/flowscope/internal/collector/aggregate"
	"github.com/flowscope/flowscope/internal/collector/ingest"
	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/collector/pipeline"
	"github.com/flowscope/flowscope/internal/demo"
	"github.com/flowscope/flowscope/internal/exporter"
	"github.com/flowscope/flowscope/internal/livedemo"
	"github.com/flowscope/flowscope/internal/store/duckdb"
	"github.com/flowscope/flowscope/web"
)

func init() {
	register("standalone", "exporter + collector + embedded store + console on this machine (the demo cluster without root)", runStandalone)
}

type standaloneFlags struct {
	listen, dataDir, logLevel, readyFile string
	demo, debug                          bool
	history                              time.Duration
	memory                               string
	retention                            retentionFlag
}

func runStandalone(ctx context.Context, args []string) error {
	var f standaloneFlags
	fs := newFlagSet("standalone")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:7480", "address of the console, the API and /metrics")
	fs.StringVar(&f.dataDir, "data-dir", "", "data directory of the store and spool (default: ./flowscope-data; a temporary one for the demo)")
	fs.BoolVar(&f.demo, "demo", false, "serve the synthetic demo cluster instead of this machine (the default without root)")
	fs.DurationVar(&f.history, "demo-history", 15*time.Minute, "history the demo replays at start (1m–1h)")
	fs.StringVar(&f.memory, "store-memory", "256MB", "DuckDB memory limit")
	f.retention.bind(fs)
	fs.StringVar(&f.readyFile, "ready-file", "", "write the console URL to this file once serving")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.BoolVar(&f.debug, "pprof", false, "serve Go's profiles under /debug/pprof/ on --listen")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.history < time.Minute || f.history > time.Hour {
		return usageError{fmt.Errorf("--demo-history must be within 1m–1h, not %v", f.history)}
	}
	log, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	note := ""
	if !f.demo {
		miss, err := exporter.MissingCapabilities()
		if err != nil {
			return err
		}
		if len(miss) > 0 {
			f.demo = true
			note = "not running as root (missing " + fmt.Sprint(miss) + "): showing the demo cluster instead of this machine"
		}
	}
	if f.demo && note == "" {
		note = "--demo: showing a synthetic demo cluster"
	}
	dir, cleanup, err := standaloneDataDir(f)
	if err != nil {
		return err
	}
	defer cleanup()
	return serveStandalone(ctx, f, dir, note, log)
}

// standaloneDataDir returns the data directory, checked to be usable, and what removes a
// temporary one.
func standaloneDataDir(f standaloneFlags) (string, func(), error) {
	dir, cleanup := f.dataDir, func() {}
	if dir == "" && f.demo {
		d, err := os.MkdirTemp("", "flowscope-demo-")
		if err != nil {
			return "", nil, fmt.Errorf("creating a temporary data directory: %w", err)
		}
		dir, cleanup = d, func() { _ = os.RemoveAll(d) }
	} else if dir == "" {
		dir = "flowscope-data"
	}
	if err := checkDataDir(dir); err != nil {
		cleanup()
		return "", nil, exitError{code: 1, err: err}
	}
	return dir, cleanup, nil
}

// checkDataDir fails clearly when dir cannot be created, read or written.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("data directory %s cannot be created: %w", dir, err)
	}
	if _, err := os.ReadDir(dir); err != nil {
		return fmt.Errorf("data directory %s is not readable: %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".probe-")
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	probe.Close()
	_ = os.Remove(probe.Name())
	for _, sub := range []string{"store", "spool"} {
		p := filepath.Join(dir, sub)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			if _, err := os.ReadDir(p); err != nil {
				return fmt.Errorf("data directory %s is not readable: %w", p, err)
			}
		}
	}
	return nil
}

func serveStandalone(ctx context.Context, f standaloneFlags, dir, note string, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	now := time.Now
	var clock *livedemo.Clock
	if f.demo {
		clock = livedemo.NewClock(time.Now().Add(-f.history), time.Now)
		now = clock.Now
	}
	// The console shows the minutes the store has not written yet (pipeline.Config.OpenMinutes,
	// with the store's own aggregation settings); the store writes closed minutes every 2 s so
	// that a minute is missing from both for at most that long.
	agg := aggregate.DefaultConfig
	st, err := duckdb.Open(ctx, duckdb.Config{Dir: filepath.Join(dir, "store"), MemoryLimit: f.memory, Retention: f.retention.r, Threads: 1, Now: now, Logger: log, Registry: reg,
		Aggregate: agg, FlushEvery: 2 * time.Second})
	if errors.Is(err, duckdb.ErrNewerSchema) {
		return fmt.Errorf("data directory %s was written by a newer flowscope; use that version or another --data-dir: %w", dir, err)
	}
	if err != nil {
		return fmt.Errorf("opening the store in %s: %w", dir, err)
	}
	defer st.Close()
	cfg := pipeline.Config{Ingest: ingest.DefaultConfig(), HTTPListen: f.listen, Debug: f.debug, Now: now, Registry: reg, Log: log, OpenMinutes: agg}
	cfg.Ingest.GRPCListen, cfg.Ingest.HTTPSListen, cfg.Ingest.UDPListen = "127.0.0.1:0", "", ""
	cfg.Ingest.InsecurePlaintext = true
	cfg.Ingest.SpoolDir = filepath.Join(dir, "spool")
	settings := web.Settings{Mode: "live", Note: note}
	if !f.demo {
		// One machine: every address's owner is this machine's exporter, which claims it with
		// the records themselves (or nobody does: a network or unattributed end, which no wait
		// changes). The collector's 60 s window waits for other nodes' claims and Kubernetes;
		// here what can name an end arrives within seconds, so 10 s at most is enough.
		cfg.Attribute.Window, cfg.Attribute.JoinWait = 10*time.Second, 5*time.Second
		// Without Kubernetes the machine's processes are the workloads: a socket outside any
		// container or systemd unit is named by its process, not as the machine or a cgroup.
		cfg.Attribute.ProcessNames = true
	}
	if f.demo {
		settings = demoSettings(note)
		dc := livedemo.ClusterConfig(f.history)
		cfg.Kube.Cluster, cfg.Kube.Labels = dc.Cluster, []string{"app"}
		cfg.Ownership = ownership.DefaultConfig()
		cfg.Ownership.SkewTolerance = 2*dc.ClockSkew + 5*time.Millisecond
		cfg.Ownership.KubeLag = dc.KubeDelay + 2*dc.KubeletLatency + time.Second
		if cfg.Networks, err = ownership.ParseNetworks("demo-networks.yaml", []byte(demo.NetworksYAML)); err != nil {
			return err
		}
	}
	var smu sync.Mutex
	cfg.Console = web.Handler(func() web.Settings { smu.Lock(); defer smu.Unlock(); return settings })
	p, err := pipeline.New(cfg, st)
	if err != nil {
		return err
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	defer p.Stop()
	url := "http://" + p.HTTPAddr() + "/"
	g, gctx := errgroup.WithContext(ctx)
	announce := func() { announceStandalone(os.Stdout, url, note, f.readyFile, log) }
	if f.demo {
		dcfg := livedemo.Config{Cluster: livedemo.ClusterConfig(f.history), History: f.history, GRPCAddr: p.Addrs().GRPC, Registry: reg, Log: log}
		g.Go(func() error {
			return livedemo.Run(gctx, dcfg, clock, p, func(start time.Time) {
				if err := st.Maintain(gctx); err != nil {
					log.Warn("writing the demo's history failed", "component", "standalone", "err", err)
				}
				exp, err := demoExpectations(gctx, st, start)
				if err != nil {
					log.Warn("deriving the demo's expected paths failed", "component", "standalone", "err", err)
				}
				smu.Lock()
				settings.Expect = exp
				settings.Events = demoEvents(start, dcfg.Cluster)
				smu.Unlock()
				announce()
			})
		})
	} else {
		g.Go(func() error { return runLocalExporter(gctx, p.Addrs().GRPC, reg, log, announce) })
	}
	return g.Wait()
}

func announceStandalone(w io.Writer, url, note, readyFile string, log *slog.Logger) {
	if note != "" {
		fmt.Fprintln(w, "flowscope:", note)
	}
	fmt.Fprintf(w, "flowscope console: %s\n", url)
	if readyFile != "" {
		if err := os.WriteFile(readyFile, []byte(url+"\n"), 0o640); err != nil {
			log.Warn("writing the ready file failed", "component", "standalone", "err", err)
		}
	}
}
