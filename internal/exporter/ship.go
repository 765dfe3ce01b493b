package exporter

import (
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// Shipper is the transport to a collector (internal/transport.Shipper): Write never blocks
// (it buffers, and drops the oldest with a count when full); AddCounters adds counter increases
// to the next batch, so the collector knows the exporter's losses.
type Shipper interface {
	Write(recs []flow.Record)
	AddCounters(deltas map[string]uint64)
	Heartbeat(h flowbatch.Heartbeat)
}

// ShipSink is a Sink that sends records to a collector and, at every summary, the increase of
// every exporter counter since the previous one.
type ShipSink struct {
	s    Shipper
	last map[string]uint64
}

// NewShipSink returns a sink over s.
func NewShipSink(s Shipper) *ShipSink { return &ShipSink{s: s, last: map[string]uint64{}} }

// Write hands records to the transport.
func (k *ShipSink) Write(recs []flow.Record) error {
	k.s.Write(recs)
	return nil
}

// Summary sends the counters' increases since the last summary.
func (k *ShipSink) Summary(s Summary) error {
	j := s.JSON()
	now := map[string]uint64{
		"records_final": j.RecordsFinal, "records_interim": j.RecordsInterim, "ring_lost": j.RingLost,
		"recursion_misses": j.RecursionMisses, "slot_collisions": j.SlotCollisions, "start_misses": j.StartMisses,
		"table_full": j.TableFull, "vanished": j.Vanished, "bad_events": j.BadEvents, "sink_errors": j.SinkErrors,
		"snapshot_errors": j.SnapshotErrors,
	}
	deltas := make(map[string]uint64, len(now))
	for name, v := range now {
		if v > k.last[name] {
			deltas[name] = v - k.last[name]
		}
		k.last[name] = v
	}
	k.s.AddCounters(deltas)
	return nil
}

// Heartbeat hands the node's ownerships to the transport (a newer one replaces an unsent one).
func (k *ShipSink) Heartbeat(h flowbatch.Heartbeat) error {
	k.s.Heartbeat(h)
	return nil
}
