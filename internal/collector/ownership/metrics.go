package ownership

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	claims          *prometheus.CounterVec
	claimsBy        [1 << 7]prometheus.Counter // by Source bit set, resolved once
	rejected        *prometheus.CounterVec
	evicted         prometheus.Counter
	compacted       prometheus.Counter
	networkErrors   prometheus.Counter
	networkPrefixes prometheus.Gauge
}

func (m *metrics) register(reg prometheus.Registerer, s *Store) error {
	const ns, sub = "flowscope", "collector_ownership"
	m.claims = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "claims_total",
		Help: "Ownership claims stored, by source."}, []string{"source"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rejected_total",
		Help: "Ownership claims rejected, by reason (invalid, past-horizon, full)."}, []string{"reason"})
	m.evicted = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "evicted_total",
		Help: "Ranges evicted because one address had too many (lookups before them answer gap)."})
	m.compacted = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "compacted_total",
		Help: "Ranges dropped because they ended before the horizon."})
	m.networkErrors = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "network_file_errors_total",
		Help: "Named-network file loads that failed (the previous networks stayed in force)."})
	m.networkPrefixes = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "network_prefixes",
		Help: "Named-network prefixes in force."})
	ranges := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "ranges",
		Help: "Ownership ranges held."}, func() float64 { return float64(s.Len()) })
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.claims, m.rejected, m.evicted, m.compacted, m.networkErrors, m.networkPrefixes, ranges} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering ownership metrics: %w", err)
		}
	}
	return nil
}

// claim counts a claim of src (callers hold the store's lock).
func (m *metrics) claim(src Source) { m.claimsOf(src).Inc() }

// claimN counts n claims of src at once.
func (m *metrics) claimN(src Source, n int) {
	if n > 0 {
		m.claimsOf(src).Add(float64(n))
	}
}

func (m *metrics) claimsOf(src Source) prometheus.Counter {
	i := int(src) & (len(m.claimsBy) - 1)
	if m.claimsBy[i] == nil {
		m.claimsBy[i] = m.claims.WithLabelValues(src.String())
	}
	return m.claimsBy[i]
}
