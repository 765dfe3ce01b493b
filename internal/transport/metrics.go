package transport

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	written        prometheus.Counter
	recordsDropped *prometheus.CounterVec
	batchesDropped *prometheus.CounterVec
	sent, bytes    *prometheus.CounterVec
	acked          *prometheus.CounterVec
	failures       *prometheus.CounterVec
	switches       *prometheus.CounterVec
	folded         prometheus.Counter
	active         *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, s *Shipper) (*metrics, error) {
	const ns, sub = "flowscope", "transport"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	m := &metrics{
		written:        prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "records_written_total", Help: "Flow records handed to the shipper."}),
		recordsDropped: counter("records_dropped_total", "Flow records dropped, by reason (pending_full, buffer_full, rejected, shutdown).", "reason"),
		batchesDropped: counter("batches_dropped_total", "Batches dropped, by reason (buffer_full, rejected, shutdown).", "reason"),
		sent:           counter("batches_sent_total", "Batch transmissions (first sends and retries), by transport.", "transport"),
		bytes:          counter("bytes_sent_total", "Encoded batch bytes transmitted, by transport.", "transport"),
		acked:          counter("batches_acked_total", "Collector answers, by transport and status.", "transport", "status"),
		failures:       counter("send_failures_total", "Delivery rounds that failed (connection, timeout, retryable refusal), by transport.", "transport"),
		switches:       counter("switches_total", "Transport switches made by --transport=auto.", "from", "to"),
		folded:         prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "degraded_flows_total", Help: "Short flows folded into aggregates to stay within the CPU budget."}),
		active:         prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "active", Help: "1 for the transport in use."}, []string{"transport"}),
	}
	buffered := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "buffer_bytes", Help: "Encoded bytes awaiting delivery."},
		func() float64 { return float64(s.Stats().BufferBytes) })
	cpu := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "cpu_cores_used",
		Help: "The exporter process's CPU use over the budget's last window, in cores (0 without a budget)."},
		func() float64 {
			s.mu.Lock()
			b := s.budget
			s.mu.Unlock()
			if b == nil {
				return 0
			}
			return b.Used()
		})
	for _, c := range []prometheus.Collector{m.written, m.recordsDropped, m.batchesDropped, m.sent, m.bytes, m.acked, m.failures, m.switches, m.folded, m.active, buffered, cpu} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering transport metrics: %w", err)
		}
	}
	return m, nil
}
