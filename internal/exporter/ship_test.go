package exporter

import (
	"testing"

	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
	"github.com/google/go-cmp/cmp"
)

type fakeShipper struct {
	recs     int
	counters map[string]uint64
}

func (f *fakeShipper) Write(recs []flow.Record)      { f.recs += len(recs) }
func (f *fakeShipper) Heartbeat(flowbatch.Heartbeat) {}
func (f *fakeShipper) AddCounters(d map[string]uint64) {
	for k, v := range d {
		f.counters[k] += v
	}
}

func TestShipSinkSendsCounterIncreases(t *testing.T) {
	f := &fakeShipper{counters: map[string]uint64{}}
	k := NewShipSink(f)
	_ = k.Write(make([]flow.Record, 3))
	sum := func(final, lost uint64) Summary {
		s := Summary{Kernel: tracer.KernelCounters{Counters: map[string]uint64{"ring_full_drops": lost}}}
		s.Loop.Table.Finals = final
		return s
	}
	_ = k.Summary(sum(10, 1))
	_ = k.Summary(sum(25, 1))
	_ = k.Summary(sum(30, 4))
	if f.recs != 3 {
		t.Errorf("records = %d", f.recs)
	}
	if d := cmp.Diff(map[string]uint64{"records_final": 30, "ring_lost": 4}, f.counters); d != "" {
		t.Errorf("counters (-want +got): %s", d)
	}
}
