package exporter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/flowscope/flowscope/internal/exporter/adapt"
	"github.com/flowscope/flowscope/internal/exporter/identity"
	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/residency"
	"github.com/flowscope/flowscope/internal/transport"
)

// NodeOptions assemble a whole exporter on this node: the workload resolver, the kernel
// tracer, the loop, and its output (JSON lines, or the transport to a collector).
type NodeOptions struct {
	Tracer tracer.Config // zero Slots/RingBytes: sized from the instance; CgroupV2 is discovered
	Loop   Config
	// Ship, when set, sends to a collector; else records go to Out as JSON lines.
	Ship      *transport.Config
	Out       io.Writer
	CPUBudget float64 // share of the node's CPU before the transport folds short flows (default 1%)
	BPFStats  bool    // enable the kernel's BPF run-time statistics while running
	Registry  *prometheus.Registry
	Log       *slog.Logger
	Ready     func() // called once the programs are attached (nil: nothing)
	// ReleaseStartup drops the executable's start-up pages from the resident set once the
	// programs are loaded: right for a process that is only an exporter (see package residency).
	ReleaseStartup bool
}

// RunNode runs an exporter until ctx ends, then flushes: with a transport, what was handed to
// it still gets up to 5 s to be acknowledged.
func RunNode(ctx context.Context, o NodeOptions) error {
	log := o.Log
	inst, err := adapt.Detect(os.DirFS("/"), runtime.NumCPU())
	if err != nil {
		log.Warn("reading the instance's size; using defaults", "error", err)
	}
	plan := adapt.PlanFor(inst, o.CPUBudget)
	if o.Tracer.Slots == 0 {
		o.Tracer.Slots = uint32(max(65536, pow2(plan.FlowEntries)))
	}
	if o.Tracer.RingBytes == 0 {
		// the ring is mapped into this process: its pages count in RSS once read, so keep it at
		// 4 MiB at most (25,000 records; the reader drains it every 100 ms and is woken at 1/4)
		o.Tracer.RingBytes = uint32(min(plan.RingBytes, 4<<20))
	}
	log.Info("sized from the instance", "cores", inst.Cores, "memory_bytes", inst.MemoryBytes,
		"slots", o.Tracer.Slots, "ring_bytes", o.Tracer.RingBytes, "cpu_budget_cores", plan.CPUBudget)

	res, err := identity.NewResolver(identity.Config{}, o.Registry, log)
	if err != nil {
		return fmt.Errorf("starting the workload resolver: %w", err)
	}
	defer res.Close()
	if m := res.Layout().V2; m != nil && m.Root == "/" {
		o.Tracer.CgroupV2 = m.MountPoint
	}
	tr, err := tracer.Open(o.Tracer, log.With("component", "tracer"))
	if err != nil {
		return err
	}
	defer tr.Close()
	debug.FreeOSMemory() // loading decoded the kernel's BTF (tens of MB): give it back now
	if o.ReleaseStartup {
		if n, err := residency.ReleaseExecutable(); err != nil {
			log.Warn("releasing start-up pages", "error", err)
		} else {
			log.Debug("released start-up pages of the executable", "bytes", n)
		}
	}
	if o.BPFStats {
		stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			return fmt.Errorf("enabling BPF run-time statistics: %w", err)
		}
		defer stats.Close()
	}
	var sink Sink = NewJSONLines(o.Out)
	if o.Ship != nil {
		ship := *o.Ship
		ship.Instance = &inst
		sh, err := transport.New(ship, o.Registry, log.With("component", "transport"), time.Now)
		if err != nil {
			return err
		}
		sh.SetBudget(adapt.NewBudget(plan.CPUBudget, 10*time.Second, adapt.ProcessCPU, time.Now))
		shipCtx, cancelShip := context.WithCancel(context.Background()) // outlives ctx: the loop's last records still go out
		if err := sh.Start(shipCtx); err != nil {
			cancelShip()
			return err
		}
		defer func() {
			drainShipper(sh, 5*time.Second)
			cancelShip()
			sh.Stop()
		}()
		sink = NewShipSink(sh)
	}
	x, err := New(o.Loop, tr, res, sink, log)
	if err != nil {
		return err
	}
	o.Registry.MustRegister(NewCollector(x, tr))
	log.Info("exporter running", "hook", tr.Hook(), "degraded", len(tr.Degraded()))
	if o.Ready != nil {
		o.Ready()
	}
	return x.Run(ctx)
}

// drainShipper waits until everything handed to sh was acknowledged, or timeout.
func drainShipper(sh *transport.Shipper, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if st := sh.Stats(); st.PendingRecords == 0 && st.BufferBatches == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pow2(v int) int {
	p := 1
	for p < v {
		p <<= 1
	}
	return p
}
