package tracer

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Counter indexes, as enum counter in bpf/flow.c.
var counterNames = [...]string{
	"closes", "ring_full_drops", "slot_collisions", "start_misses", "retransmit_events",
	"resets_sent_events", "resets_received_events", "opens", "connects", "iter_sockets",
	"closer_stamps",
}

// KernelCounters are the BPF programs' own counters, summed over CPUs, plus the kernel's
// per-program statistics.
type KernelCounters struct {
	Counters map[string]uint64       // by name, see counterNames
	Programs map[string]ProgramStats // by program name
}

// ProgramStats are the kernel's statistics of one program. RunCount and RunTimeNs count only
// while run-time statistics are enabled (ebpf.EnableStats); RecursionMisses always counts.
type ProgramStats struct {
	RunCount        uint64
	RunTimeNs       uint64
	RecursionMisses uint64
}

// Counters reads the kernel-side counters.
func (t *Tracer) Counters() (KernelCounters, error) {
	kc := KernelCounters{Counters: map[string]uint64{}, Programs: map[string]ProgramStats{}}
	for i, name := range counterNames {
		var perCPU []uint64
		if err := t.maps.Counters.Lookup(uint32(i), &perCPU); err != nil {
			return kc, fmt.Errorf("reading counter %s: %w", name, err)
		}
		var sum uint64
		for _, v := range perCPU {
			sum += v
		}
		kc.Counters[name] = sum
	}
	for name, p := range t.progs {
		st, err := p.Stats()
		if err != nil {
			return kc, fmt.Errorf("reading stats of %s: %w", name, err)
		}
		kc.Programs[name] = ProgramStats{RunCount: st.RunCount, RunTimeNs: uint64(st.Runtime), RecursionMisses: st.RecursionMisses}
	}
	return kc, nil
}

// MapMemory returns the bytes the tracer's maps pin in kernel memory, as the kernel accounts
// them (memlock).
func (t *Tracer) MapMemory() uint64 {
	var total uint64
	for _, m := range []*ebpf.Map{t.maps.Events, t.maps.Slots, t.maps.Counters} {
		if m == nil {
			continue
		}
		if info, err := m.Info(); err == nil {
			if v, ok := info.Memlock(); ok {
				total += v
			}
		}
	}
	return total
}
