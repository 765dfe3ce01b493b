package identity

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	lookups, hits, misses, unresolved, evictions       prometheus.Counter
	walks, walksLimited, walkTruncated, processLookups prometheus.Counter
}

func newMetrics() metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "flowscope", Subsystem: "exporter_identity", Name: name, Help: help,
		})
	}
	return metrics{
		lookups:        c("lookups_total", "Workload lookups (one per flow record)."),
		hits:           c("cache_hits_total", "Lookups answered from the cache."),
		misses:         c("cache_misses_total", "Lookups that had to resolve the cgroup id."),
		unresolved:     c("unresolved_total", "Cgroup ids that could not be resolved to a path (removed cgroup, or tree walked too recently)."),
		evictions:      c("evictions_total", "Cache entries evicted to make room (clock policy)."),
		walks:          c("walks_total", "Walks of the cgroup v2 tree to index cgroup ids."),
		walksLimited:   c("walks_rate_limited_total", "Misses that did not walk the tree because it was walked less than the rewalk interval ago."),
		walkTruncated:  c("walks_truncated_total", "Walks that stopped at the configured maximum of cgroups."),
		processLookups: c("process_lookups_total", "Lookups of a process's own cgroups (cgroup v1 fallback)."),
	}
}

func (m metrics) register(reg prometheus.Registerer, c *cache) error {
	if reg == nil {
		return nil
	}
	entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "flowscope", Subsystem: "exporter_identity", Name: "cache_entries",
		Help: "Workloads in the cache.",
	}, func() float64 { return float64(c.len()) })
	for _, col := range []prometheus.Collector{
		m.lookups, m.hits, m.misses, m.unresolved, m.evictions,
		m.walks, m.walksLimited, m.walkTruncated, m.processLookups, entries,
	} {
		if err := reg.Register(col); err != nil {
			return fmt.Errorf("registering identity metrics: %w", err)
		}
	}
	return nil
}
