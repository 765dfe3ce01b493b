package exporter

import (
	"time"

	"github.com/flowscope/flowscope/internal/exporter/tracer"
)

// Summary is the exporter's periodic account of itself: every total in the record stream comes
// with these counters, so losses are never silent.
type Summary struct {
	Time     time.Time
	Hook     string
	Loop     Stats
	Kernel   tracer.KernelCounters
	Degraded []string
}

// SummaryJSON is the documented JSON form of a Summary (docs/flow-record.md).
type SummaryJSON struct {
	Time            time.Time         `json:"time"`
	Hook            string            `json:"hook"`
	RecordsFinal    uint64            `json:"records_final"`
	RecordsInterim  uint64            `json:"records_interim"`
	TrackedConns    int               `json:"tracked_connections"`
	RingLost        uint64            `json:"ring_lost"`          // records the kernel could not queue (ring full)
	RecursionMisses uint64            `json:"recursion_misses"`   // program runs the kernel skipped
	SlotCollisions  uint64            `json:"slot_collisions"`    // open sockets whose start slot was taken by a newer one
	StartMisses     uint64            `json:"start_misses"`       // closes without a known start
	TableFull       uint64            `json:"table_full"`         // open connections not tracked for interim records
	Vanished        uint64            `json:"vanished"`           // tracked connections whose close event was lost
	BadEvents       uint64            `json:"bad_events"`         // malformed kernel records
	SinkErrors      uint64            `json:"sink_errors"`        // failed writes to the output
	SnapshotErrors  uint64            `json:"snapshot_errors"`    // namespaces that could not be read
	Namespaces      int               `json:"namespaces"`         // network namespaces seen
	KernelCounters  map[string]uint64 `json:"kernel_counters"`    // every BPF-side counter
	Degraded        []string          `json:"degraded,omitempty"` // optional kernel features missing
}

// JSON returns the documented JSON form.
func (s Summary) JSON() SummaryJSON {
	var misses uint64
	for _, p := range s.Kernel.Programs {
		misses += p.RecursionMisses
	}
	return SummaryJSON{Time: s.Time, Hook: s.Hook,
		RecordsFinal: s.Loop.Table.Finals, RecordsInterim: s.Loop.Table.Interims,
		TrackedConns: s.Loop.Table.Tracked, RingLost: s.Kernel.Counters["ring_full_drops"],
		RecursionMisses: misses, SlotCollisions: s.Kernel.Counters["slot_collisions"],
		StartMisses: s.Kernel.Counters["start_misses"], TableFull: s.Loop.Table.TableFull,
		Vanished: s.Loop.Table.Vanished, BadEvents: s.Loop.BadEvents, SinkErrors: s.Loop.SinkErrors,
		SnapshotErrors: s.Loop.SnapshotErrors, Namespaces: s.Loop.Namespaces,
		KernelCounters: s.Kernel.Counters, Degraded: s.Degraded}
}

// Lost returns the number of records known lost so far (ring full, skipped program runs,
// tracked connections whose close was lost).
func (s Summary) Lost() uint64 {
	j := s.JSON()
	return j.RingLost + j.RecursionMisses + j.Vanished
}
