package attribute

import (
	"fmt"

	"github.com/flowscope/flowscope/internal/flow"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	received      prometheus.Counter
	rejected      prometheus.Counter
	attributed    prometheus.Counter
	unattributed  *prometheus.CounterVec
	conns         *prometheus.CounterVec
	joined        prometheus.Counter
	disagreements prometheus.Counter
	full          prometheus.Counter
	written       prometheus.Counter
	sinkErrors    prometheus.Counter
	sinkDropped   prometheus.Counter
	aggregates    prometheus.Counter

	byObserved map[string]prometheus.Counter // resolved label values of conns
	byReason   map[string]prometheus.Counter // ... and of unattributed

	pending struct { // counts not yet added to the counters
		observed   [3]int // by observedNames
		reasons    map[string]int
		attributed int
		joined     int
	}
}

// Sides observed (flow.Conn.Observed), numbered for counting.
const (
	observedClient = iota
	observedServer
	observedBoth
)

var observedNames = [...]string{observedClient: string(flow.Client), observedServer: string(flow.Server), observedBoth: "both"}

// conn counts one written connection and its endpoints (under the Attributor's lock); the
// counts reach the counters at flushCounts.
func (m *metrics) conn(observed int, clientReason, serverReason flow.Reason) {
	m.pending.observed[observed]++
	for _, r := range [2]flow.Reason{clientReason, serverReason} {
		if r == "" {
			m.pending.attributed++
		} else {
			m.pending.reasons[string(r)]++
		}
	}
}

// flushCounts adds the pending counts to the counters (under the Attributor's lock).
func (m *metrics) flushCounts() {
	p := &m.pending
	for i, n := range p.observed {
		if n > 0 {
			resolved(m.byObserved, m.conns, observedNames[i]).Add(float64(n))
		}
	}
	p.observed = [3]int{}
	addCounts(p.reasons, m.byReason, m.unattributed)
	if p.attributed > 0 {
		m.attributed.Add(float64(p.attributed))
	}
	if p.joined > 0 {
		m.joined.Add(float64(p.joined))
	}
	p.attributed, p.joined = 0, 0
}

// addCounts adds counts by label value to vec (through children, its resolved children) and
// clears them.
func addCounts(counts map[string]int, children map[string]prometheus.Counter, vec *prometheus.CounterVec) {
	for v, n := range counts {
		resolved(children, vec, v).Add(float64(n))
	}
	clear(counts)
}

// resolved returns vec's child of label value v, resolved once into children.
func resolved(children map[string]prometheus.Counter, vec *prometheus.CounterVec, v string) prometheus.Counter {
	c, ok := children[v]
	if !ok {
		c = vec.WithLabelValues(v)
		children[v] = c
	}
	return c
}

func (m *metrics) register(reg prometheus.Registerer, a *Attributor) error {
	const ns, sub = "flowscope", "collector_attribution"
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	m.byObserved, m.byReason = map[string]prometheus.Counter{}, map[string]prometheus.Counter{}
	m.pending.reasons = map[string]int{}
	m.received = counter("records_total", "Exporter records taken into the holding window.")
	m.rejected = counter("rejected_total", "Exporter records rejected as invalid.")
	m.attributed = counter("attributed_total", "Connection endpoints attributed to an owner.")
	m.unattributed = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "unattributed_total",
		Help: "Connection endpoints left unattributed, by reason."}, []string{"reason"})
	m.conns = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "conns_total",
		Help: "Connections written, by the sides observed (client, server, both)."}, []string{"observed"})
	m.joined = counter("joined_total", "Connections whose client and server records were joined.")
	m.disagreements = counter("join_disagreements_total", "Joined connections whose two sides attribute an end differently.")
	m.full = counter("holding_full_total", "Records decided early because the holding window was full.")
	m.written = counter("written_total", "Connections written to the sink.")
	m.sinkErrors = counter("sink_errors_total", "Failed writes to the sink (the batch is retried).")
	m.aggregates = counter("aggregates_skipped_total", "Flow aggregates of degraded exporters, not attributed (they name no single connection).")
	m.sinkDropped = counter("sink_dropped_total", "Connections dropped after a failed write because the retry buffer was full.")
	depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "holding_depth",
		Help: "Records in the holding window."}, func() float64 { return float64(a.Held()) })
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.received, m.rejected, m.attributed, m.unattributed, m.conns, m.joined,
		m.disagreements, m.full, m.written, m.sinkErrors, m.sinkDropped, m.aggregates, depth} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering attribution metrics: %w", err)
		}
	}
	return nil
}
