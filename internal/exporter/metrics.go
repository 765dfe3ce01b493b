package exporter

import (
	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the exporter's counters as Prometheus metrics (flowscope_exporter_*),
// read at scrape time from the kernel maps and the loop's published stats.
type Collector struct {
	x  *Exporter
	tr *tracer.Tracer

	records, kernel, lost, loop, nat, tracked, namespaces, listeners, mapBytes *prometheus.Desc
	progRuns, progTime, progMisses                                             *prometheus.Desc
}

// NewCollector returns a collector for x; register it on a registry of your own.
func NewCollector(x *Exporter, tr *tracer.Tracer) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("flowscope_exporter_"+name, help, labels, nil)
	}
	return &Collector{x: x, tr: tr,
		records:    d("records_total", "Flow records emitted, by kind (final, interim).", "kind"),
		kernel:     d("kernel_events_total", "Counters of the BPF programs, by event.", "event"),
		lost:       d("lost_total", "Flow records known lost, by cause (ring_full, vanished).", "cause"),
		loop:       d("loop_events_total", "Counters of the exporter loop, by event.", "event"),
		nat:        d("conntrack_total", "NAT translations of client records from conntrack, by result.", "result"),
		tracked:    d("tracked_connections", "Open connections tracked for interim records."),
		namespaces: d("network_namespaces", "Network namespaces seen by the last scan."),
		listeners:  d("listeners", "Listening sockets known from the last snapshot passes."),
		mapBytes:   d("bpf_map_bytes", "Kernel memory held by the exporter's BPF maps."),
		progRuns:   d("bpf_program_runs_total", "Runs of each BPF program (while run-time statistics are enabled).", "program"),
		progTime:   d("bpf_program_run_seconds_total", "Run time of each BPF program (while run-time statistics are enabled).", "program"),
		progMisses: d("bpf_recursion_misses_total", "Runs the kernel skipped because the program was already running on the CPU: lost events.", "program"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.records, c.kernel, c.lost, c.loop, c.nat, c.tracked, c.namespaces,
		c.listeners, c.mapBytes, c.progRuns, c.progTime, c.progMisses} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.x.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.records, s.Table.Finals, "final")
	counter(c.records, s.Table.Interims, "interim")
	counter(c.lost, s.Table.Vanished, "vanished")
	for name, v := range map[string]uint64{"bad_events": s.BadEvents, "sink_errors": s.SinkErrors,
		"snapshots": s.Snapshots, "snapshot_errors": s.SnapshotErrors, "table_full": s.Table.TableFull,
		"late_snapshots": s.Table.LateSnapshots, "direction_inferred": s.Table.DirectionInferred,
		"opens_dropped": s.Table.OpensDropped, "server_named_by_listener": s.Table.ServerNamed,
		"server_no_listener": s.Table.ServerNoListener, "server_listener_owner_unknown": s.Table.ServerOwnerUnknown} {
		counter(c.loop, v, name)
	}
	n := c.x.NATStats()
	for name, v := range map[string]uint64{"lookups": n.Lookups, "translated": n.Translated, "not_tracked": n.NotTracked,
		"skipped": n.Skipped, "plain": n.Plain, "errors": n.Errors, "cache_resets": n.CacheResets} {
		counter(c.nat, v, name)
	}
	ch <- prometheus.MustNewConstMetric(c.tracked, prometheus.GaugeValue, float64(s.Table.Tracked))
	ch <- prometheus.MustNewConstMetric(c.namespaces, prometheus.GaugeValue, float64(s.Namespaces))
	ch <- prometheus.MustNewConstMetric(c.listeners, prometheus.GaugeValue, float64(s.Table.Listeners))
	ch <- prometheus.MustNewConstMetric(c.mapBytes, prometheus.GaugeValue, float64(c.tr.MapMemory()))
	kc, err := c.tr.Counters()
	if err != nil {
		return
	}
	for name, v := range kc.Counters {
		counter(c.kernel, v, name)
	}
	counter(c.lost, kc.Counters["ring_full_drops"], "ring_full")
	for name, p := range kc.Programs {
		counter(c.progRuns, p.RunCount, name)
		ch <- prometheus.MustNewConstMetric(c.progTime, prometheus.CounterValue, float64(p.RunTimeNs)/1e9, name)
		counter(c.progMisses, p.RecursionMisses, name)
	}
}
