package ownership

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
)

// podAddr is the address of pod slot i (100,000 fit in 10.0.0.0/8).
func podAddr(i int) netip.Addr { return podAddrFn(i) }

// podAddrFn makes podAddr's addresses (TestMemoryPerRange swaps in IPv6 ones).
var podAddrFn = podAddr4

func podAddr4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func podAddr6(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xfd, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
}

func benchOwner(gen, i int) Owner {
	return Owner{
		Kind: flow.EndpointPod, Cluster: "prod", Namespace: fmt.Sprintf("ns-%d", i%50),
		Workload: fmt.Sprintf("workload-%d", i%2000), WorkloadKind: "Deployment",
		Pod: fmt.Sprintf("workload-%d-7d9f8c-%05d", i%2000, gen), PodUID: fmt.Sprintf("%08x-0000-4000-8000-%012x", gen, i),
		Node: fmt.Sprintf("node-%d", i%500), ServiceAccount: fmt.Sprintf("workload-%d", i%2000),
	}
}

// churnStore models pods that each hold their slot's address for `life`, replaced by a pod
// of another generation at once: the old pod's exporter range and Kubernetes range close, the
// new pod's open.
type churnStore struct {
	s      *Store
	now    time.Time
	gen    []int
	starts []time.Time
}

func newChurnStore(tb testing.TB, pods int) *churnStore {
	tb.Helper()
	c := &churnStore{now: t0, gen: make([]int, pods), starts: make([]time.Time, pods)}
	var err error
	c.s, err = New(Config{Horizon: 15 * time.Minute, MaxRanges: 16 << 20}, func() time.Time { return c.now }, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range pods {
		c.start(i)
	}
	c.s.SetKubeSynced(c.now)
	return c
}

func (c *churnStore) start(i int) {
	c.starts[i] = c.now
	o := benchOwner(c.gen[i], i)
	_ = c.s.Open(Claim{Addr: podAddr(i), Owner: o, From: c.now, Source: SourceKubePod})
	_ = c.s.Observe(Claim{Addr: podAddr(i), Owner: exporterOwner(o), From: c.now, To: c.now, Source: SourceHeartbeat, Origin: o.Node})
}

// exporterOwner is o as an exporter's heartbeat names it (attribute.HeartbeatClaims): the pod
// by UID, namespace and name on its node; Kubernetes names the rest. A second owner per pod.
func exporterOwner(o Owner) Owner {
	return Owner{Kind: o.Kind, PodUID: o.PodUID, Namespace: o.Namespace, Pod: o.Pod, Node: o.Node}
}

func (c *churnStore) replace(i int) {
	o := benchOwner(c.gen[i], i)
	_ = c.s.Observe(Claim{Addr: podAddr(i), Owner: exporterOwner(o), From: c.starts[i], To: c.now, Source: SourceHeartbeat, Origin: o.Node})
	c.s.Close(podAddr(i), 0, o, SourceKubePod, c.now)
	c.gen[i]++
	c.now = c.now.Add(time.Millisecond)
	c.start(i)
}

// heapPerRange measures the live heap per range of a store of `pods` pods, each with an
// exporter range and a Kubernetes range, after `churns` replacements of every pod.
func heapPerRange(tb testing.TB, pods, churns int) (perRange float64, ranges int) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c := newChurnStore(tb, pods)
	for range churns {
		c.now = c.now.Add(time.Minute)
		for i := range pods {
			c.replace(i)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	ranges = c.s.Len()
	runtime.KeepAlive(c)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(ranges), ranges
}

// TestMemoryPerRange: ≤ 200 bytes of heap per ownership range, owners interned, counting the
// owners' strings (pod names and UIDs are unique per pod) and the per-address maps.
func TestMemoryPerRange(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr func(int) netip.Addr
	}{{"ipv4", podAddr4}, {"ipv6", podAddr6}} { // (IPv6 entries are kept apart, in a map)
		t.Run(tc.name, func(t *testing.T) {
			podAddrFn = tc.addr
			t.Cleanup(func() { podAddrFn = podAddr4 })
			per, n := heapPerRange(t, 20_000, 2)
			t.Logf("%d ranges, %.0f B of heap per range", n, per)
			if per > 200 {
				t.Errorf("%.0f B per range > 200", per)
			}
		})
	}
}

func BenchmarkMemoryPerRange(b *testing.B) {
	for range b.N {
		per, n := heapPerRange(b, 100_000, 2)
		b.ReportMetric(per, "B/range")
		b.ReportMetric(float64(n), "ranges")
	}
}

// TestChurnStaysBounded: 10,000 pods replaced every 10 minutes for 3 simulated hours, compacted
// every minute: the ranges held stop growing once the horizon is reached.
func TestChurnStaysBounded(t *testing.T) {
	maxRanges, final := churnDay(t, 10_000, 3*time.Hour)
	t.Logf("max ranges %d, final %d", maxRanges, final)
	// Per pod: the current two ranges plus those ending within the 15 min horizon (two
	// generations of two ranges), with slack.
	if limit := 10_000 * 8; maxRanges > limit {
		t.Errorf("ranges grew to %d (> %d): not bounded", maxRanges, limit)
	}
}

// churnDay replaces every pod each 10 minutes (a tenth of them each minute) for `span`,
// compacting each minute; it returns the most ranges held and the final count.
func churnDay(tb testing.TB, pods int, span time.Duration) (maxRanges, final int) {
	maxRanges, final, _ = churnDayHeap(tb, pods, span)
	return maxRanges, final
}

// churnDayHeap is churnDay also returning the live heap at the end (the store still alive).
func churnDayHeap(tb testing.TB, pods int, span time.Duration) (maxRanges, final int, heap uint64) {
	c := newChurnStore(tb, pods)
	perMinute := pods / 10
	next := 0
	for m := 0; m < int(span/time.Minute); m++ {
		c.now = c.now.Add(time.Minute)
		for range perMinute {
			c.replace(next)
			next = (next + 1) % pods
		}
		c.s.Compact(c.now)
		maxRanges = max(maxRanges, c.s.Len())
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(c)
	return maxRanges, c.s.Len(), ms.HeapAlloc
}

// BenchmarkChurn24h is the scale check: 100,000 pods churning every 10 minutes for 24
// simulated hours (14.4M pod lifetimes). Run with -benchtime=1x.
func BenchmarkChurn24h(b *testing.B) {
	for range b.N {
		maxRanges, final, heap := churnDayHeap(b, 100_000, 24*time.Hour)
		b.ReportMetric(float64(maxRanges), "max-ranges")
		b.ReportMetric(float64(final), "final-ranges")
		b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	}
}

// BenchmarkLookup: the ownership lookup of a flow's remote end, 100,000 pods, each address
// with its exporter range, its Kubernetes range and a previous holder's.
func BenchmarkLookup(b *testing.B) {
	const pods = 100_000
	c := newChurnStore(b, pods)
	c.now = c.now.Add(time.Minute)
	for i := range pods {
		c.replace(i)
	}
	c.now = c.now.Add(time.Minute)
	for i := range pods {
		o := benchOwner(c.gen[i], i)
		_ = c.s.Observe(Claim{Addr: podAddr(i), Owner: exporterOwner(o), From: c.starts[i], To: c.now, Source: SourceHeartbeat, Origin: o.Node})
	}
	c.s.SetKubeSynced(c.now.Add(time.Hour))
	rng := rand.New(rand.NewPCG(1, 2))
	idx := make([]int, 4096)
	for i := range idx {
		idx[i] = rng.IntN(pods)
	}
	at := c.now.Add(-30 * time.Second)
	runtime.GC() // the setup's garbage is not the lookups' cost
	// rendered: Store.Lookup, one lock and a rendered Owner per lookup. ref: what the holding
	// window does — lookups answering a Ref, under one View per 4096.
	b.Run("rendered", func(b *testing.B) {
		cpu := cpuTime()
		for i := range b.N {
			r := c.s.Lookup(podAddr(idx[i&4095]), 8080, at, false)
			if !r.Attributed() {
				b.Fatalf("lookup: %+v", r)
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
	b.Run("ref", func(b *testing.B) {
		cpu := cpuTime()
		atNs := at.UnixNano()
		v := c.s.View()
		for i := range b.N {
			if i&4095 == 4095 {
				v.Close()
				v = c.s.View()
			}
			if r := v.Lookup(podAddr(idx[i&4095]), 8080, atNs, false); !r.Attributed() {
				b.Fatalf("lookup: %+v", r)
			}
		}
		v.Close()
		b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
	// memo: lookups of 1,000 addresses under a MemoView, nearly all answered by the memo — the
	// holding window's lookups in a small cluster; memo-brief: the same, answering in brief
	// (View.LookupBrief).
	var m LookupMemo
	var v View
	lookups := func(b *testing.B, lookup func(i int, atNs int64)) {
		cpu := cpuTime()
		atNs := at.UnixNano()
		v = c.s.MemoView(&m)
		for i := range b.N {
			if i&4095 == 4095 {
				v.Close()
				v = c.s.MemoView(&m)
			}
			lookup(i, atNs)
		}
		v.Close()
		b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
	b.Run("memo", func(b *testing.B) {
		lookups(b, func(i int, atNs int64) {
			if r := v.Lookup(podAddr(idx[i%1000]), uint16(i&1)*8080, atNs, i&2 == 0); !r.Attributed() {
				b.Fatalf("lookup: %+v", r)
			}
		})
	})
	b.Run("memo-brief", func(b *testing.B) {
		m = LookupMemo{}
		lookups(b, func(i int, atNs int64) {
			if r := v.LookupBrief(podAddr(idx[i%1000]), uint16(i&1)*8080, atNs, i&2 == 0); r.Code != 0 || r.Bits&BriefPending != 0 {
				b.Fatalf("lookup: %+v", r)
			}
		})
	})
}

// cpuTime is the process's CPU time (all threads, the garbage collector included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFillEndpoint: rendering an owner into an output endpoint (View.FillEndpoint), 1,000
// pods, into 4,096 endpoints in turn (an output batch's part): the compute of a rendering.
func BenchmarkFillEndpoint(b *testing.B) {
	const pods = 1000
	c := newChurnStore(b, pods)
	refs := make([]Ref, pods)
	v := c.s.View()
	for i := range refs {
		u, ok := v.Resolve(benchOwner(0, i).PodUID)
		if !ok {
			b.Fatal("no owner")
		}
		refs[i] = u
	}
	out := make([]flow.Endpoint, 4096)
	b.ResetTimer()
	for i := range b.N {
		v.FillEndpoint(&out[i&4095], refs[i%pods], podAddr(i%pods), 8080)
	}
	b.StopTimer()
	v.Close()
	if out[0].Kind != flow.EndpointPod || out[0].Workload == "" || out[0].PodUID == "" {
		b.Fatalf("rendered %+v", out[0])
	}
}

// BenchmarkObservePods: the local ends of flows claimed in a store of 100,000 pods (an
// exporter range and a Kubernetes range each), in batches of 16,384 as the holding window
// gives them: a connection's client (addresses in turn) and server (addresses at random).
// cpu-ns per claim.
//
//   - heartbeats=ahead: every claim falls inside its pod's heartbeat range (as in
//     BenchmarkAttributeJoin: records 20 s old, heartbeats reaching past them);
//   - heartbeats=behind: as records arrive from exporters, 2–3 s after their end, while an
//     exporter's heartbeat (every 5 s) reports its pods up to when it was sent. A claim then
//     mostly extends its pod's range or stores a range of its own, which the next heartbeat
//     merges (heartbeats are applied between batches, outside the measured time: they are
//     per pod, not per flow). The acceptance demo's claims look so (see
//     docs/benchmarks/attribution-log.md, "Live records").
func BenchmarkObservePods(b *testing.B) {
	b.Run("heartbeats=ahead", func(b *testing.B) { benchObservePods(b, false) })
	b.Run("heartbeats=behind", func(b *testing.B) { benchObservePods(b, true) })
}

func benchObservePods(b *testing.B, behind bool) {
	const pods, hbEvery = 100_000, 5 // heartbeats every 5 batches (one a second)
	now := t0.Add(time.Hour)
	s, err := New(Config{KubeLag: 10 * time.Second, MaxRanges: 8 << 20, SkewTolerance: DefaultConfig().SkewTolerance}, func() time.Time { return now }, nil)
	if err != nil {
		b.Fatal(err)
	}
	uids := make([]string, pods)
	hbs := make([]Claim, pods)
	for i := range pods {
		o := benchOwner(0, i)
		uids[i] = strings.Clone(o.PodUID) // (as a decoded record holds it: not the owner's string)
		_ = s.Open(Claim{Addr: podAddr(i), Owner: o, From: t0, Source: SourceKubePod})
		hbs[i] = Claim{Addr: podAddr(i), Owner: exporterOwner(o), From: t0, To: t0.Add(2 * time.Hour), Source: SourceHeartbeat, Origin: o.Node}
		if behind {
			hbs[i].To = now
		}
		_ = s.Observe(hbs[i])
	}
	s.SetKubeSynced(t0.Add(3 * time.Hour))
	const batch = 16384
	claims := make([]LocalPod, batch)
	refs := make([]Ref, batch)
	from, to := -20*time.Second, -19*time.Second
	if behind {
		from, to = -3*time.Second, -2*time.Second
	}
	runtime.GC()
	b.ResetTimer()
	var cpu time.Duration
	for n, round := 0, 0; n < b.N; n, round = n+batch, round+1 {
		if behind && round%hbEvery == 0 { // the exporters' heartbeats of this second
			for i := range hbs {
				hbs[i].To = now
			}
			if err := s.Observe(hbs...); err != nil {
				b.Fatal(err)
			}
		}
		for k := range batch {
			i := (n + k) / 2
			p := i % pods
			if k&1 == 1 {
				p = (i*7919 + 13) % pods
			}
			claims[k] = LocalPod{Addr: podAddr(p), UID: uids[p], Origin: "exp", From: now.Add(from).UnixNano(), To: now.Add(to).UnixNano()}
		}
		c := cpuTime()
		if err := s.ObservePods(claims, refs); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c
		now = now.Add(time.Second)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/claim")
	b.ReportMetric(float64(s.Len())/pods, "ranges/pod")
}
