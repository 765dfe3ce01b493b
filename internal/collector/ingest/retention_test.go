package ingest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
)

func segments(t *testing.T, dir string) int {
	t.Helper()
	starts, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(starts)
}

// TestRetentionKeepsDedupe: consumed segments are removed, and after a restart batches from
// removed segments are still recognised as duplicates (from the snapshot).
func TestRetentionKeepsDedupe(t *testing.T) {
	cfg := testConfig(t)
	cfg.SegmentBytes, cfg.RetentionInterval = 8<<10, 20*time.Millisecond
	c := newCollect()
	in := startIngestWith(t, cfg, prometheus.NewRegistry(), c)
	for seq := uint64(1); seq <= 40; seq++ {
		if a := in.Accept(TransportGRPC, encodeBatch(t, "e1", "b1", seq, 20)); a.Status != flowv1.Ack_STATUS_ACCEPTED {
			t.Fatal(a)
		}
	}
	c.waitFor(t, 40)
	deadline := time.Now().Add(5 * time.Second)
	for segments(t, cfg.SpoolDir) > 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := segments(t, cfg.SpoolDir); n != 1 {
		t.Fatalf("%d segments left after everything was consumed", n)
	}
	in.Stop()
	in2 := startIngest(t, cfg)
	if a := in2.Accept(TransportGRPC, encodeBatch(t, "e1", "b1", 3, 20)); a.Status != flowv1.Ack_STATUS_DUPLICATE {
		t.Errorf("a batch from a removed segment after restart: %v", a)
	}
}

// stuck never finishes consuming.
type stuck struct{}

func (stuck) Name() string { return "stuck" }
func (stuck) Consume(ctx context.Context, _ Entry) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestSpoolBound(t *testing.T) {
	cfg := testConfig(t)
	cfg.SegmentBytes, cfg.SpoolMaxBytes, cfg.RetentionInterval = 8<<10, 32<<10, 20*time.Millisecond
	reg := prometheus.NewRegistry()
	in := startIngestWith(t, cfg, reg, stuck{})
	for seq := uint64(1); seq <= 100; seq++ {
		in.Accept(TransportGRPC, encodeBatch(t, "e1", "b1", seq, 20))
	}
	deadline := time.Now().Add(5 * time.Second)
	var size int64
	for time.Now().Before(deadline) {
		size = 0
		entries, _ := os.ReadDir(cfg.SpoolDir)
		for _, e := range entries {
			if fi, err := e.Info(); err == nil && !e.IsDir() {
				size += fi.Size()
			}
		}
		if size <= cfg.SpoolMaxBytes+cfg.SegmentBytes+32<<10 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if size > cfg.SpoolMaxBytes+cfg.SegmentBytes+32<<10 {
		t.Errorf("spool holds %d bytes, bound %d", size, cfg.SpoolMaxBytes)
	}
	if n := counterValue(t, reg, "flowscope_collector_spool_dropped_batches_total"); n == 0 {
		t.Error("dropped batches not counted")
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, _ := reg.Gather()
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.Metric {
				v += m.Counter.GetValue()
			}
		}
	}
	return v
}
