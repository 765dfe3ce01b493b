// Package duckdbtest loads the fixed data set of the golden tests (flowgen.Small, two hours
// of flows) into a real embedded DuckDB store.
package duckdbtest

import (
	"sync"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/flowgen"
	"github.com/flowscope/flowscope/internal/store/duckdb"
)

// Start is when the fixed data set begins; it spans Span.
var Start = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// Span of the fixed data set.
const Span = 2 * time.Hour

// ScriptAt is when the data set's history changes (flowgen.Cluster.Script): one dependency
// vanishes, another starts failing.
var ScriptAt = Start.Add(time.Hour)

// Now is the clock of a loaded store: a little after the data set ends, hours rolled up.
var Now = Start.Add(Span + 10*time.Minute)

// Load returns a store in a temporary directory holding the fixed data set, closed at cleanup.
func Load(t testing.TB) *duckdb.Store {
	t.Helper()
	var mu sync.Mutex
	now := Start
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := duckdb.Open(t.Context(), duckdb.Config{Dir: t.TempDir(), Now: clock, MinFreeBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	gen := flowgen.New(flowgen.Small)
	gen.Script(ScriptAt)
	conns := gen.Conns(Start, Span, 20000)
	for i := 0; i < len(conns); i += 1000 {
		b := conns[i:min(i+1000, len(conns))]
		mu.Lock()
		now = b[len(b)-1].End.Add(time.Second)
		mu.Unlock()
		if err := s.Write(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		if err := s.Maintain(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	now = Now
	mu.Unlock()
	if err := s.Maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}
