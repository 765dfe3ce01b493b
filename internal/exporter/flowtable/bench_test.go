package flowtable

import (
	"testing"

	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
)

// BenchmarkApplyClose is the table's cost per final record (both ends of short connections).
func BenchmarkApplyClose(b *testing.B) {
	tb := newTable(Config{ResetEvents: true})
	evs := make([]tracer.Event, 512)
	for i := range evs {
		evs[i] = ev(tracer.KindClose, tracer.StateFinWait2, tracer.FlagActive|tracer.FlagStartKnown|tracer.FlagFinAcked|tracer.FlagFinRcvd, 1025, 4097)
		evs[i].Comm = "client"
		evs[i].Pid = 42
	}
	var out []flow.Record
	b.ResetTimer()
	for i := 0; i < b.N; i += len(evs) {
		for j := range evs {
			evs[j].Key = uint64(i + j)
		}
		out = tb.Apply(evs, out[:0])
	}
}
