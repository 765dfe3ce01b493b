package flowtable

import (
	"runtime"
	"testing"

	"github.com/flowscope/flowscope/internal/exporter/tracer"
)

// TestMemoryPerTrackedConnection bounds the heap a tracked connection costs.
func TestMemoryPerTrackedConnection(t *testing.T) {
	const n = 200_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tb := newTable(Config{MaxConns: n})
	tb.BeginPass(100 * sec)
	chunk := make([]tracer.Event, 512)
	for i := 0; i < n; i += len(chunk) {
		for j := range chunk {
			chunk[j] = ev(tracer.KindSnapshot, tracer.StateEstablished, tracer.FlagActive|tracer.FlagStartKnown, 10, 10)
			chunk[j].Key = uint64(i + j + 1)
			chunk[j].StartNs = 99 * sec
		}
		tb.SnapshotChunk(chunk[0].Netns, chunk, nil)
	}
	tb.EndPass(func(uint32) bool { return true }, nil)
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%d tracked connections: %.0f bytes each on the heap", tb.Stats().Tracked, per)
	if tb.Stats().Tracked != n || per > 200 {
		t.Fatalf("tracked %d, %.0f bytes each (want ≤ 200)", tb.Stats().Tracked, per)
	}
}
