package aggregate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowscope/flowscope/internal/flow"
)

type sinkFunc func(context.Context, []flow.Conn) error

func (f sinkFunc) Write(ctx context.Context, c []flow.Conn) error { return f(ctx, c) }

func TestEdgeMetricsAreBoundedAndCountOnlyAccepted(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewEdgeMetrics(reg, 2)
	refuse := false
	sink := MetricsSink{Next: sinkFunc(func(context.Context, []flow.Conn) error {
		if refuse {
			return errors.New("disk full")
		}
		return nil
	}), Metrics: m}
	var conns []flow.Conn
	for i, wl := range []string{"a", "b", "c", "d"} {
		c := conn(wl, t0, false, flow.OK, uint64(100*(i+1)))
		c.Client.Workload = wl
		conns = append(conns, c)
	}
	conns[1].Outcome = flow.Refused
	if err := sink.Write(t.Context(), conns); err != nil {
		t.Fatal(err)
	}
	refuse = true
	if err := sink.Write(t.Context(), conns); err == nil {
		t.Fatal("refused write passed")
	}
	want := `
# HELP flowscope_edge_sent_bytes_total Payload bytes from client (src) to server (dst).
# TYPE flowscope_edge_sent_bytes_total counter
flowscope_edge_sent_bytes_total{direction="_other",dst="_other",port="_other",src="_other"} 700
flowscope_edge_sent_bytes_total{direction="internal",dst="shop/api",port="8080",src="shop/a"} 100
flowscope_edge_sent_bytes_total{direction="internal",dst="shop/api",port="8080",src="shop/b"} 200
# HELP flowscope_edge_overflow_records_total Records counted under _other because the edge series limit was reached.
# TYPE flowscope_edge_overflow_records_total counter
flowscope_edge_overflow_records_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "flowscope_edge_sent_bytes_total", "flowscope_edge_overflow_records_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m); n > 3*(4+3+1)+2 {
		t.Errorf("%d series for a limit of 2 edges", n)
	}
	_ = time.Second
}
