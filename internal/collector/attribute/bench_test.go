package attribute

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchUID is pod i's UID, a UUID as Kubernetes gives them (what claims parse).
func benchUID(i int) string { return fmt.Sprintf("%08x-7d9f-4c1e-8a3b-%012x", i, i) }

func benchAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// BenchmarkAttributeJoin measures attribution end to end per connection: both sides'
// records enter the holding window (each local end also claims ownership), are looked up in a
// store of 100,000 pods (exporter and Kubernetes ranges), joined, cross-checked and written.
// cpu-ns/record is the process CPU time (all goroutines, GC included) per record.
func BenchmarkAttributeJoin(b *testing.B) {
	for _, pods := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) { benchAttributeJoin(b, pods, benchShape{}) })
	}
}

// BenchmarkAttributeJoinLive is BenchmarkAttributeJoin with records as they come from
// exporters: 2–3 s after their end, while each exporter's heartbeat (every 5 s) reports its
// pods up to when it was sent — so a record's local end mostly extends its pod's range, or
// stores one of its own until the next heartbeat merges them, as in the acceptance demo — and
// each record held until Kubernetes may have spoken about its start (KubeLag, 10 s): a flush
// decides the records of seven seconds before. Heartbeats are applied between seconds,
// outside the measured time (they are per pod, not per flow); the final flushes that drain
// the window are measured. pods=10000 sits between the other two sizes: a store that would
// fit the core's cache on its own (≈ 2.4 MB), whose addresses recur ten times less often than
// 1,000 pods' (docs/benchmarks/attribution-log.md, "Where the 100,000-pod gap begins").
func BenchmarkAttributeJoinLive(b *testing.B) {
	for _, pods := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) { benchAttributeJoin(b, pods, benchShape{live: true}) })
	}
}

// BenchmarkAttributeJoinOneAdd is BenchmarkAttributeJoinLive with a second's records (16,384,
// ≈ 7.6 MB of Inputs) made first and added in one call, as the benchmarks did before they
// took exporters' batches: Add then reads records that left the core's cache while the rest
// were made. It measures what that costs, in the same run as the live figure.
func BenchmarkAttributeJoinOneAdd(b *testing.B) {
	for _, pods := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) { benchAttributeJoin(b, pods, benchShape{live: true, perAdd: 16384}) })
	}
}

// BenchmarkAttributeJoinRich is BenchmarkAttributeJoinLive with owners named as in a cloud
// cluster: they carry labels, as a collector configured to keep some (--labels app,team) names
// them, and their nodes are in zones (the Node label topology.kubernetes.io/zone): each
// rendered endpoint carries its owner's label map and its node's zone.
func BenchmarkAttributeJoinRich(b *testing.B) {
	for _, pods := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) { benchAttributeJoin(b, pods, benchShape{live: true, rich: true}) })
	}
}

// BenchmarkAttributeJoinVIP is BenchmarkAttributeJoinRich with every client dialling its
// server through the server's Service: a ClusterIP per workload (2,000), the translation to
// the server pod known from conntrack. A connection's client record is then attributed twice
// (the backend and the Service) and the connection carries a third endpoint, the VIP.
func BenchmarkAttributeJoinVIP(b *testing.B) {
	for _, pods := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) { benchAttributeJoin(b, pods, benchShape{live: true, rich: true, vip: true}) })
	}
}

// BenchmarkAttributeJoinInterleaved is BenchmarkAttributeJoinRich with a write to the store
// between the parts a flush hands the sink (every writeChunk connections), as a collector's
// ingest makes them: Add and heartbeats run whenever a flush lets go of its locks to write a
// part, and every write starts the lookup memo afresh. Here the write is one pod's heartbeat.
func BenchmarkAttributeJoinInterleaved(b *testing.B) {
	for _, pods := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			benchAttributeJoin(b, pods, benchShape{live: true, rich: true, interleaved: true})
		})
	}
}

// benchShape is what a benchmark's records and owners are like: live records (else steady,
// 20 s old), rich owners (labels, zones), clients dialling Services (vip), a store write
// between a flush's parts (interleaved); and how many records an Add takes (perAdd; 0:
// exporterBatch).
type benchShape struct {
	live, rich, vip, interleaved bool
	perAdd                       int
}

// exporterBatch is how many records the benchmarks add at a time: the largest batch an
// exporter sends (adapt.PlanFor, on a node of 8 cores or more), which the collector's ingest
// decodes and hands to AddBatch whole. A second's records of the benchmarks (16,384) are
// then nine batches, each made just before it is added, as a decoded batch is.
const exporterBatch = 2000

// benchVIP is workload w's Service address.
func benchVIP(w int) netip.Addr { return netip.AddrFrom4([4]byte{172, 20, byte(w >> 8), byte(w)}) }

func benchAttributeJoin(b *testing.B, pods int, shape benchShape) {
	live, rich := shape.live, shape.rich
	now := t0.Add(time.Hour)
	clock := func() time.Time { return now }
	cfg := ownership.DefaultConfig() // the collector's (a 250 ms skew tolerance), with room for every range
	cfg.MaxRanges = 8 << 20
	store, err := ownership.New(cfg, clock, nil)
	if err != nil {
		b.Fatal(err)
	}
	hbs := make([]ownership.Claim, pods)
	for i := range pods {
		o := ownership.Owner{Kind: flow.EndpointPod, Cluster: "prod", Namespace: fmt.Sprintf("ns-%d", i%50), Workload: fmt.Sprintf("w-%d", i%2000),
			WorkloadKind: "Deployment", Pod: fmt.Sprintf("w-%d-7d9f8-%05d", i%2000, i), PodUID: benchUID(i), Node: fmt.Sprintf("node-%d", i%500)}
		if rich {
			o.Labels = ownership.CanonicalLabels(map[string]string{"app": o.Workload, "team": fmt.Sprintf("team-%d", i%40)})
		}
		_ = store.Open(ownership.Claim{Addr: benchAddr(i), Owner: o, From: t0, Source: ownership.SourceKubePod})
		hb := ownership.Owner{Kind: o.Kind, PodUID: o.PodUID, Namespace: o.Namespace, Pod: o.Pod, Node: o.Node} // as HeartbeatClaims names it
		hbs[i] = ownership.Claim{Addr: benchAddr(i), Owner: hb, From: t0, To: t0.Add(2 * time.Hour), Source: ownership.SourceHeartbeat, Origin: o.Node}
		if live {
			hbs[i].To = now
		}
		_ = store.Observe(hbs[i])
	}
	store.SetKubeSynced(t0.Add(3 * time.Hour))
	if rich {
		for n := range 500 {
			store.SetNodeZone(fmt.Sprintf("node-%d", n), fmt.Sprintf("zone-%d", n%3))
		}
	}
	if shape.vip {
		for w := range 2000 {
			svc := ownership.Owner{Kind: flow.EndpointService, Cluster: "prod", Namespace: fmt.Sprintf("ns-%d", w%50), Service: fmt.Sprintf("w-%d", w)}
			_ = store.Open(ownership.Claim{Addr: benchVIP(w), Owner: svc, From: t0, Source: ownership.SourceKubeService})
		}
	}
	written := 0
	sink := SinkFunc(func(_ context.Context, conns []flow.Conn) error {
		written += len(conns)
		if shape.interleaved { // (the flush holds no lock of the store while the sink writes)
			hb := hbs[written%pods]
			hb.To = now
			return store.Observe(hb)
		}
		return nil
	})
	a, err := New(Config{}, store, sink, clock, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	// The inputs' strings exist once, as the ingest's decoded batches hold them: the
	// harness allocates nothing per record, so the figure is attribution's own.
	uids, exporters := make([]string, pods), make([]string, 500)
	for i := range uids {
		uids[i] = benchUID(i)
	}
	for i := range exporters {
		exporters[i] = fmt.Sprintf("exp-%d", i)
	}
	start, end := -20*time.Second, -19*time.Second // records 20 s old: their heartbeats came before them
	if live {
		start, end = -3*time.Second, -2*time.Second
	}
	mk := func(i int, dir flow.Direction) Input {
		c, s := i%pods, (i*7919+13)%pods
		r := flow.Record{ConnID: uint64(i), Family: flow.IPv4, Direction: dir, Start: now.Add(start), End: now.Add(end),
			BytesSent: 100, BytesReceived: 5000, Outcome: flow.OK, Workload: flow.Workload{Kind: flow.KindPod, PodUID: uids[c]}}
		r.LocalAddr, r.LocalPort, r.RemoteAddr, r.RemotePort = benchAddr(c), uint16(32768+i%28000), benchAddr(s), 8080
		if dir == flow.Server {
			r.Workload.PodUID = uids[s]
			r.LocalAddr, r.LocalPort, r.RemoteAddr, r.RemotePort = r.RemoteAddr, r.RemotePort, r.LocalAddr, r.LocalPort
		} else if shape.vip {
			r.RemoteAddr, r.RemotePort, r.NatRemoteAddr, r.NatRemotePort = benchVIP(s%2000), 80, r.RemoteAddr, r.RemotePort
		}
		return Input{Exporter: exporters[i%500], Node: "n", Record: r}
	}
	perAdd := shape.perAdd
	if perAdd == 0 {
		perAdd = exporterBatch
	}
	const perSecond = 8192 // connections
	ins := make([]Input, 0, min(perAdd, 2*perSecond))
	ctx := context.Background()
	runtime.GC()
	b.ResetTimer()
	var cpu, addCPU time.Duration
	for i, round := 0, 0; i < b.N; i, round = i+perSecond, round+1 {
		b.StopTimer()
		if live && round%5 == 0 { // the exporters' heartbeats of this second
			for k := range hbs {
				hbs[k].To = now
			}
			if err := store.Observe(hbs...); err != nil {
				b.Fatal(err)
			}
		}
		// The second's records, a batch at a time, each made just before it is added (as the
		// ingest decodes a batch and hands it over).
		for k := i; k < min(i+perSecond, b.N); {
			ins = ins[:0]
			for ; k < min(i+perSecond, b.N) && len(ins) < perAdd; k++ {
				ins = append(ins, mk(k, flow.Client), mk(k, flow.Server))
			}
			b.StartTimer()
			c := cpuTime()
			if err := a.Add(ins...); err != nil {
				b.Fatal(err)
			}
			addCPU += cpuTime() - c
			b.StopTimer()
		}
		b.StartTimer()
		c := cpuTime()
		now = now.Add(time.Second)
		if err := a.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c
	}
	for a.Held() > 0 { // (live: the last seconds' records)
		c := cpuTime()
		now = now.Add(time.Second)
		if err := a.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c
	}
	b.StopTimer()
	cpu += addCPU
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(2*b.N), "cpu-ns/record")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/conn")
	// The split: Add (validation, the holding window, the local ends' claims) and Flush
	// (lookups, join, cross-check, the rendered output).
	b.ReportMetric(float64(addCPU.Nanoseconds())/float64(2*b.N), "cpu-ns/record-add")
	b.ReportMetric(float64((cpu-addCPU).Nanoseconds())/float64(2*b.N), "cpu-ns/record-flush")
	if written != b.N || a.Held() != 0 {
		b.Fatalf("written %d of %d connections, %d held", written, b.N, a.Held())
	}
}

// BenchmarkReferenceMapLookup is the yardstick for a shared, loaded machine: one random
// lookup in a Go map of 100,000 string keys, measured in the same run as the others.
func BenchmarkReferenceMapLookup(b *testing.B) {
	m := map[string]int{}
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("uid-%08d", i)
		m[keys[i]] = i
	}
	b.ResetTimer()
	c := cpuTime()
	s := 0
	for i := range b.N {
		s += m[keys[(i*7919)%len(keys)]]
	}
	b.ReportMetric(float64((cpuTime()-c).Nanoseconds())/float64(b.N), "cpu-ns/op")
	runtime.KeepAlive(s)
}
