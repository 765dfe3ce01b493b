package ingest

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/flowbatch"
)

type metrics struct {
	batches, flows, aggregates, duplicates *prometheus.CounterVec
	rejected                               *prometheus.CounterVec
	ackLatency                             *prometheus.HistogramVec
	consumed                               *prometheus.CounterVec
	undecodable                            prometheus.Counter
	spoolDropped, skipped                  prometheus.Counter
	exporterCounters                       *prometheus.CounterVec
	counterNames                           map[string]bool // bounded label set of exporterCounters

	mu    sync.Mutex
	depth map[string]func() float64 // consumer name → queue depth
}

func newMetrics(reg prometheus.Registerer, in *Ingest) (*metrics, error) {
	const ns, sub = "flowscope", "collector"
	m := &metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "batches_received_total", Help: "Batches accepted and stored, by transport."}, []string{"transport"}),
		flows: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "flows_received_total", Help: "Flow records in accepted batches, by transport."}, []string{"transport"}),
		aggregates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "aggregates_received_total", Help: "Flow aggregates (degraded exporters) in accepted batches."}, []string{"transport"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "duplicate_batches_total", Help: "Batches received again after they were stored (acknowledged, not stored twice)."}, []string{"transport"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "batches_rejected_total", Help: "Batches refused, by transport and reason."}, []string{"transport", "reason"}),
		ackLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "ack_latency_seconds", Help: "Time from receiving a batch to its acknowledgement (includes the fsync).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"transport"}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "consumer_batches_total", Help: "Batches handed to each downstream consumer."}, []string{"consumer"}),
		undecodable: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "spool_undecodable_total", Help: "Stored batches that could not be decoded for consumers (skipped)."}),
		spoolDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "spool_dropped_batches_total", Help: "Stored batches removed before every consumer had them (spool over its size bound)."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "consumer_skipped_batches_total", Help: "Batches a consumer never saw because the spool removed them first."}),
		exporterCounters: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "exporter_counters_total", Help: "Sums of the counters exporters carry in their batches (drops, evictions, ring losses, degradations...), by name."}, []string{"name"}),
		counterNames: map[string]bool{},
		depth:        map[string]func() float64{},
	}
	for _, c := range []prometheus.Collector{m.batches, m.flows, m.aggregates, m.duplicates, m.rejected, m.ackLatency, m.consumed, m.undecodable, m.spoolDropped, m.skipped, m.exporterCounters,
		&lossCollector{in: in}, &depthCollector{m: m}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering collector metrics: %w", err)
		}
	}
	return m, nil
}

var (
	lossDesc = prometheus.NewDesc("flowscope_collector_missing_batches",
		"Sequence numbers between an exporter's lowest and highest stored batch that never arrived (UDP loss; transient during gRPC/HTTPS retries).",
		[]string{"exporter"}, nil)
	depthDesc = prometheus.NewDesc("flowscope_collector_queue_depth",
		"Stored batches a downstream consumer has not processed yet.", []string{"consumer"}, nil)
)

type lossCollector struct{ in *Ingest }

func (c *lossCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lossDesc }
func (c *lossCollector) Collect(ch chan<- prometheus.Metric) {
	for exp, n := range c.in.Missing() {
		ch <- prometheus.MustNewConstMetric(lossDesc, prometheus.GaugeValue, float64(n), exp)
	}
}

type depthCollector struct{ m *metrics }

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- depthDesc }
func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	for name, f := range c.m.depth {
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, f(), name)
	}
}

// maxCounterNames bounds the exporter counter label set; further names are summed as "other".
const maxCounterNames = 256

func (m *metrics) addExporterCounters(cs []flowbatch.Counter) {
	if len(cs) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range cs {
		name := c.Name
		if !m.counterNames[name] {
			if len(m.counterNames) >= maxCounterNames {
				name = "other"
			} else {
				m.counterNames[name] = true
			}
		}
		m.exporterCounters.WithLabelValues(name).Add(float64(c.Value))
	}
}
