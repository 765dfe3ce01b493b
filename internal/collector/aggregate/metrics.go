package aggregate

import (
	"context"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/store"
)

// Other is the label value of edges beyond the series limit.
const Other = "_other"

// rttBuckets are the upper bounds of flowscope_edge_rtt_seconds, in seconds.
var rttBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

type metricKey struct{ src, dst, port, dir string }

type edgeCounters struct {
	sent, received, conns, retrans uint64
	failed                         [3]uint64 // refused, timeout, reset
	buckets                        []uint64  // cumulative counts per rttBuckets
	rttCount                       uint64
	rttSum                         float64
}

// EdgeMetrics exports workload-level edges as Prometheus metrics (flowscope_edge_*) with
// bounded cardinality: the first MaxEdges edges seen get their own series; later ones are
// counted under src=dst="_other" (and flowscope_edge_overflow_records_total says how many
// records went there). Series never disappear, so counters stay monotonic.
type EdgeMetrics struct {
	mu       sync.Mutex
	max      int
	edges    map[metricKey]*edgeCounters
	overflow uint64

	sent, received, conns, retrans, failed, rtt, overflowD, tracked *prometheus.Desc
}

// NewEdgeMetrics registers the edge metrics on reg; maxEdges ≤ 0 means 500.
func NewEdgeMetrics(reg prometheus.Registerer, maxEdges int) *EdgeMetrics {
	if maxEdges <= 0 {
		maxEdges = 500
	}
	l := []string{"src", "dst", "port", "direction"}
	m := &EdgeMetrics{
		max:       maxEdges,
		edges:     map[metricKey]*edgeCounters{},
		sent:      prometheus.NewDesc("flowscope_edge_sent_bytes_total", "Payload bytes from client (src) to server (dst).", l, nil),
		received:  prometheus.NewDesc("flowscope_edge_received_bytes_total", "Payload bytes from server (dst) to client (src).", l, nil),
		conns:     prometheus.NewDesc("flowscope_edge_connections_total", "Connections that ended (failed ones included).", l, nil),
		failed:    prometheus.NewDesc("flowscope_edge_failed_connections_total", "Failed connections by reason (refused, timeout, reset).", append(l, "reason"), nil),
		retrans:   prometheus.NewDesc("flowscope_edge_retransmits_total", "Retransmitted segments.", l, nil),
		rtt:       prometheus.NewDesc("flowscope_edge_rtt_seconds", "Smoothed RTT of the edge's connection records (client side when known).", l, nil),
		overflowD: prometheus.NewDesc("flowscope_edge_overflow_records_total", "Records counted under _other because the edge series limit was reached.", nil, nil),
		tracked:   prometheus.NewDesc("flowscope_edge_series_edges", "Edges with their own series (bounded by the limit).", nil, nil),
	}
	if reg != nil {
		reg.MustRegister(m)
	}
	return m
}

// Observe counts conns.
func (m *EdgeMetrics) Observe(conns []flow.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range conns {
		c := &conns[i]
		k := Keys(*c)[0]
		mk := metricKey{src: k.Src, dst: k.Dst, port: strconv.Itoa(int(k.Port)), dir: k.Direction.String()}
		e := m.edges[mk]
		if e == nil {
			if len(m.edges) >= m.max {
				m.overflow++
				mk = metricKey{src: Other, dst: Other, port: Other, dir: Other}
				e = m.edges[mk]
			}
			if e == nil {
				e = &edgeCounters{buckets: make([]uint64, len(rttBuckets))}
				m.edges[mk] = e
			}
		}
		e.sent += c.BytesClientToServer
		e.received += c.BytesServerToClient
		e.retrans += c.Retransmits
		if !c.Interim {
			e.conns++
			switch c.Outcome {
			case flow.Refused:
				e.failed[0]++
			case flow.Timeout:
				e.failed[1]++
			case flow.Reset, flow.Aborted:
				e.failed[2]++
			}
		}
		rtt := c.ClientSrttUs
		if rtt == 0 {
			rtt = c.ServerSrttUs
		}
		if rtt > 0 {
			s := float64(rtt) / 1e6
			e.rttCount++
			e.rttSum += s
			for j, b := range rttBuckets {
				if s <= b {
					e.buckets[j]++
				}
			}
		}
	}
}

// Describe implements prometheus.Collector.
func (m *EdgeMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.sent, m.received, m.conns, m.failed, m.retrans, m.rtt, m.overflowD, m.tracked} {
		ch <- d
	}
}

var failReasons = [3]string{"refused", "timeout", "reset"}

// Collect implements prometheus.Collector.
func (m *EdgeMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.edges {
		l := []string{k.src, k.dst, k.port, k.dir}
		ch <- prometheus.MustNewConstMetric(m.sent, prometheus.CounterValue, float64(e.sent), l...)
		ch <- prometheus.MustNewConstMetric(m.received, prometheus.CounterValue, float64(e.received), l...)
		ch <- prometheus.MustNewConstMetric(m.conns, prometheus.CounterValue, float64(e.conns), l...)
		ch <- prometheus.MustNewConstMetric(m.retrans, prometheus.CounterValue, float64(e.retrans), l...)
		for i, r := range failReasons {
			ch <- prometheus.MustNewConstMetric(m.failed, prometheus.CounterValue, float64(e.failed[i]), append(l, r)...)
		}
		b := make(map[float64]uint64, len(rttBuckets))
		for i, ub := range rttBuckets {
			b[ub] = e.buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(m.rtt, e.rttCount, e.rttSum, b, l...)
	}
	ch <- prometheus.MustNewConstMetric(m.overflowD, prometheus.CounterValue, float64(m.overflow))
	tracked := len(m.edges)
	if _, ok := m.edges[metricKey{Other, Other, Other, Other}]; ok {
		tracked--
	}
	ch <- prometheus.MustNewConstMetric(m.tracked, prometheus.GaugeValue, float64(tracked))
}

// MetricsSink passes conns to Next and, once Next has accepted them, counts them in Metrics.
type MetricsSink struct {
	Next    store.Sink
	Metrics *EdgeMetrics
}

// Write implements store.Sink.
func (s MetricsSink) Write(ctx context.Context, conns []flow.Conn) error {
	if err := s.Next.Write(ctx, conns); err != nil {
		return err
	}
	s.Metrics.Observe(conns)
	return nil
}
