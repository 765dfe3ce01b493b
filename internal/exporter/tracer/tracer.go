// Package tracer loads flowscope's BPF programs (bpf/flow.c), attaches them to the best hooks
// the running kernel offers, and hands out decoded kernel events: socket closes from the ring
// buffer and snapshots of open sockets from iter/tcp. It holds no flow state of its own.
package tracer

import (
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
)

// Hook names the attachment used for inet_sock_set_state.
type Hook string

// Hooks, most capable first. HookAuto probes them in this order.
const (
	HookAuto       Hook = "auto"
	HookTPBTF      Hook = "tp_btf"     // typed BTF tracepoint: socket cookies, slots in the kernel
	HookRawTP      Hook = "raw_tp"     // raw tracepoint: opens are sent as events
	HookTracepoint Hook = "tracepoint" // classic tracepoint: as raw_tp
)

// Config sizes and selects what is loaded. Zero values take the defaults.
type Config struct {
	Hook        Hook   // auto (default), tp_btf, raw_tp or tracepoint
	Slots       uint32 // per-socket start slots, rounded up to a power of two (default 65536; a collision loses the older start, counted)
	RingBytes   uint32 // ring buffer size, a power of two ≥ page size (default 4 MiB; full → records dropped, counted)
	WakeBytes   uint64 // wake the reader early when this much is queued (default RingBytes/4)
	ProcessInfo bool   // attach cgroup connect4/6 on CgroupV2 to capture pid and comm of clients
	CgroupV2    string // cgroup v2 mount for the connect hooks
	// EphemeralPorts is connect()'s local port range (default: the kernel's
	// net.ipv4.ip_local_port_range). A socket closing with its local port in it and its remote
	// port outside it is taken for a client, which connect() named; any other socket is named
	// by the process that closes it.
	EphemeralPorts [2]uint16
}

func (c *Config) defaults() {
	if c.Hook == "" {
		c.Hook = HookAuto
	}
	if c.Slots == 0 {
		c.Slots = 65536
	}
	c.Slots = 1 << bits.Len32(c.Slots-1)
	if c.RingBytes == 0 {
		c.RingBytes = 4 << 20
	}
	if p := uint32(os.Getpagesize()); c.RingBytes < p {
		c.RingBytes = p
	}
	c.RingBytes = 1 << bits.Len32(c.RingBytes-1)
	if c.EphemeralPorts[1] == 0 {
		c.EphemeralPorts = localPortRange("/proc/sys/net/ipv4/ip_local_port_range")
	}
	if c.EphemeralPorts[1] == 0 {
		c.EphemeralPorts = [2]uint16{32768, 60999}
	}
	if c.WakeBytes == 0 {
		c.WakeBytes = uint64(c.RingBytes / 4)
	}
}

// Tracer owns the loaded programs, maps and links.
type Tracer struct {
	log      *slog.Logger
	cfg      Config
	hook     Hook
	maps     flowscopeMaps
	progs    map[string]*ebpf.Program
	links    []link.Link
	iter     *link.Iter
	reader   *ringbuf.Reader
	waiter   *ringWaiter // nil: the reader's own blocking wait
	degraded []string
	comms    comms
	btf      *btf.Cache // kernel BTF, decoded once for all program loads; dropped after Open
}

// Open loads the programs and attaches them. Optional hooks that the kernel lacks are skipped
// with one warning naming the feature and what is degraded; only a missing state hook fails.
func Open(cfg Config, log *slog.Logger) (_ *Tracer, err error) {
	cfg.defaults()
	t := &Tracer{log: log, cfg: cfg, progs: map[string]*ebpf.Program{}, btf: btf.NewCache()}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	spec, err := loadFlowscope()
	if err != nil {
		return nil, fmt.Errorf("reading the BPF object: %w", err)
	}
	if err := configure(spec, cfg); err != nil {
		return nil, err
	}
	if err := spec.LoadAndAssign(&t.maps, &ebpf.CollectionOptions{Cache: t.btf}); err != nil {
		return nil, fmt.Errorf("creating BPF maps: %w", err)
	}
	if err := t.attachState(spec); err != nil {
		return nil, err
	}
	t.attachOptional(spec)
	t.btf = nil // the parsed vmlinux BTF is many MB of heap, needed only while loading
	if t.reader, err = ringbuf.NewReader(t.maps.Events); err != nil {
		return nil, fmt.Errorf("opening the ring buffer: %w", err)
	}
	if t.waiter, err = newRingWaiter(t.maps.Events); err != nil {
		log.Debug("waiting for the ring buffer in a system call", "error", err)
	}
	return t, nil
}

func configure(spec *ebpf.CollectionSpec, cfg Config) error {
	spec.Maps["slots"].MaxEntries = cfg.Slots
	spec.Maps["events"].MaxEntries = cfg.RingBytes
	for name, v := range map[string]any{"slot_mask": cfg.Slots - 1, "wake_bytes": cfg.WakeBytes,
		"eph_lo": cfg.EphemeralPorts[0], "eph_hi": cfg.EphemeralPorts[1]} {
		vs, ok := spec.Variables[name]
		if !ok {
			return fmt.Errorf("BPF object lacks variable %s", name)
		}
		if err := vs.Set(v); err != nil {
			return fmt.Errorf("setting %s: %w", name, err)
		}
	}
	return nil
}

// loadProgram loads one program of spec, sharing the tracer's maps.
func (t *Tracer) loadProgram(spec *ebpf.CollectionSpec, name string) (*ebpf.Program, error) {
	if p, ok := t.progs[name]; ok {
		return p, nil
	}
	one := spec.Copy()
	for n := range one.Programs {
		if n != name {
			delete(one.Programs, n)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{Cache: t.btf, MapReplacements: map[string]*ebpf.Map{
		"events": t.maps.Events, "slots": t.maps.Slots, "counters": t.maps.Counters,
	}})
	if err != nil {
		return nil, err
	}
	p := coll.DetachProgram(name)
	coll.Close()
	t.progs[name] = p
	return p, nil
}

// Hook returns the hook chosen for inet_sock_set_state.
func (t *Tracer) Hook() Hook { return t.hook }

// EphemeralPorts is the local port range of connect() the programs were loaded with.
func (t *Tracer) EphemeralPorts() [2]uint16 { return t.cfg.EphemeralPorts }

// Degraded lists the optional features that could not be attached.
func (t *Tracer) Degraded() []string { return t.degraded }

// Close detaches and unloads everything. Safe to call more than once.
func (t *Tracer) Close() error {
	var errs []error
	if t.waiter != nil {
		errs = append(errs, t.waiter.close())
		t.waiter = nil
	}
	if t.reader != nil {
		errs = append(errs, t.reader.Close())
		t.reader = nil
	}
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	t.links = nil
	if t.iter != nil {
		errs = append(errs, t.iter.Close())
		t.iter = nil
	}
	for n, p := range t.progs {
		errs = append(errs, p.Close())
		delete(t.progs, n)
	}
	errs = append(errs, t.maps.Close())
	t.maps = flowscopeMaps{}
	return errors.Join(errs...)
}

// MonotonicNow returns CLOCK_MONOTONIC in nanoseconds, the clock of the kernel's timestamps.
func MonotonicNow() uint64 { return monotonicNow() }

// WallClock converts kernel monotonic timestamps to wall-clock time. The offset is measured at
// construction; Recalibrate measures it again (call it now and then: NTP slews the wall clock).
type WallClock struct{ offset time.Duration }

// NewWallClock measures the offset between the wall clock and CLOCK_MONOTONIC.
func NewWallClock() *WallClock {
	w := &WallClock{}
	w.Recalibrate()
	return w
}

// Recalibrate measures the offset again.
func (w *WallClock) Recalibrate() {
	before := monotonicNow()
	now := time.Now()
	after := monotonicNow()
	w.offset = time.Duration(now.UnixNano() - int64(before+(after-before)/2))
}

// Time converts a monotonic nanosecond timestamp.
func (w *WallClock) Time(ns uint64) time.Time {
	return time.Unix(0, int64(ns)+int64(w.offset)).UTC()
}

// localPortRange reads net.ipv4.ip_local_port_range from path; zero if unreadable.
func localPortRange(path string) [2]uint16 {
	b, err := os.ReadFile(path)
	if err != nil {
		return [2]uint16{}
	}
	var lo, hi uint16
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo > hi {
		return [2]uint16{}
	}
	return [2]uint16{lo, hi}
}
