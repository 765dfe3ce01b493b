// Package demo is a synthetic Kubernetes cluster over synthetic time: nodes, namespaces,
// Deployments and StatefulSets whose pods churn (IPs freed and handed to pods of other
// workloads within a second), Services, exporters that ship flow records and ownership
// heartbeats (with delay and loss), Kubernetes watch events (with delay), dependencies that
// start failing — and the ground truth of every connection, to verify attribution against.
// Cluster is the reusable generator; Run drives a collector with it.
package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
)

// Config shapes the synthetic cluster.
type Config struct {
	Seed           uint64
	Start          time.Time     // the first moment of the simulation
	Cluster        string        // cluster name in owners
	Nodes          int           // nodes (each runs an exporter)
	Workloads      int           // workloads, alternately Deployments and StatefulSets
	Replicas       int           // pods per workload
	ReusePerMinute float64       // share of pod IPs freed and given to another workload's new pod per minute
	ReuseWithin    time.Duration // an IP freed is handed out again within this (< 1 s)
	FlowsPerSecond float64       // new connections per second
	StaleIPShare   float64       // share of direct-IP connections dialling an address from a stale view
	ExternalShare  float64       // share of connections to a named external network
	NATShare       float64       // share of clients' records to a Service that carry the translation to the backend (conntrack)
	HeartbeatEvery time.Duration // each exporter's heartbeat period
	HeartbeatDelay time.Duration // heartbeats arrive up to this late
	HeartbeatLoss  float64       // share of heartbeats lost
	KubeDelay      time.Duration // Kubernetes events arrive up to this late
	KubeletLatency time.Duration // a pod's status is written this long after its IP is assigned
	BatchEvery     time.Duration // each exporter ships its records this often
	TransportDelay time.Duration // record batches arrive up to this late
	ClockSkew      time.Duration // each node's clock is off by up to this
	FailAfter      time.Duration // one dependency starts refusing connections after this (0: never)
}

// DefaultConfig is the acceptance scenario: 10% of IPs reused per minute, heartbeats up to 30 s
// late (5% lost), Kubernetes events up to 10 s late.
func DefaultConfig() Config {
	return Config{
		Seed: 1, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Cluster: "demo",
		Nodes: 5, Workloads: 10, Replicas: 4, ReusePerMinute: 0.10, ReuseWithin: 900 * time.Millisecond,
		FlowsPerSecond: 40, StaleIPShare: 0.05, ExternalShare: 0.02, NATShare: 0.5,
		HeartbeatEvery: 5 * time.Second, HeartbeatDelay: 30 * time.Second, HeartbeatLoss: 0.05,
		KubeDelay: 10 * time.Second, KubeletLatency: 50 * time.Millisecond,
		BatchEvery: time.Second, TransportDelay: 2 * time.Second, ClockSkew: 20 * time.Millisecond,
		FailAfter: 5 * time.Minute,
	}
}

// Validate reports a configuration that cannot run.
func (c *Config) Validate() error {
	switch {
	case c.Nodes < 1 || c.Workloads < 2 || c.Replicas < 1:
		return fmt.Errorf("demo: need at least 1 node, 2 workloads and 1 replica")
	case c.Nodes > 200 || c.Workloads*c.Replicas > 200*c.Nodes:
		return fmt.Errorf("demo: at most 200 nodes and 200 pods per node")
	case c.ReusePerMinute < 0 || c.ReusePerMinute > 1 || c.HeartbeatLoss < 0 || c.HeartbeatLoss >= 1:
		return fmt.Errorf("demo: shares must be within [0, 1)")
	case c.HeartbeatEvery <= 0 || c.BatchEvery <= 0 || c.FlowsPerSecond <= 0:
		return fmt.Errorf("demo: periods and rates must be positive")
	case c.ReuseWithin <= 0 || c.ReuseWithin >= time.Second:
		return fmt.Errorf("demo: --reuse-within must be within (0, 1s)")
	}
	return nil
}

type pod struct {
	uid, name string
	w         *workload
	node      *node
	ip        netip.Addr
	created   time.Time // object creation (true time)
	assigned  time.Time // IP assigned (zero while pending)
	released  time.Time // IP released (zero while held)
	rs        string    // ReplicaSet name for Deployment pods
	serial    int
}

func (p *pod) holds(t time.Time) bool {
	return !p.assigned.IsZero() && !t.Before(p.assigned) && (p.released.IsZero() || t.Before(p.released))
}

type workload struct {
	ns, name, kind string // kind: Deployment or StatefulSet
	port           uint16
	vip            netip.Addr // Deployments are dialled through their Service
	svcUID         string
	pods           []*pod // running pods (IP held)
	deps           []*workload
	failing        bool
	serial         int
	hash           string
}

type node struct {
	name, exporter, boot string
	zone                 string // topology.kubernetes.io/zone
	ip                   netip.Addr
	skew                 time.Duration
	free                 []netip.Addr
	pods                 []*pod // holding an address, in assignment order
	released             []*pod // pods released recently, still listed in heartbeats
	connID               uint64
	seq                  uint64
	records              []flow.Record
	nextBatch, nextHB    time.Time
	created              time.Time
}

// clock converts a true time to this node's clock.
func (n *node) clock(t time.Time) time.Time { return t.Add(n.skew) }

var zones = []string{"zone-a", "zone-b", "zone-c"}
var namespaces = []string{"shop", "payments", "platform"}
var workloadNames = []string{"frontend", "cart", "checkout", "catalog", "auth", "orders", "search", "ledger", "users", "reviews", "stock", "mailer"}

func (c *Cluster) build() {
	for i := range c.cfg.Nodes {
		n := &node{
			name: fmt.Sprintf("node-%d", i+1), zone: zones[i%len(zones)], exporter: fmt.Sprintf("exporter-node-%d", i+1), boot: fmt.Sprintf("boot-%d", c.cfg.Seed),
			ip: netip.AddrFrom4([4]byte{192, 168, 0, byte(10 + i)}), created: c.cfg.Start.Add(-24 * time.Hour),
			skew: time.Duration((c.rng.Float64()*2 - 1) * float64(c.cfg.ClockSkew)),
		}
		for h := 2; h < 250; h++ {
			n.free = append(n.free, netip.AddrFrom4([4]byte{10, 244, byte(i + 1), byte(h)}))
		}
		c.rng.Shuffle(len(n.free), func(a, b int) { n.free[a], n.free[b] = n.free[b], n.free[a] })
		n.nextBatch = c.cfg.Start.Add(time.Duration(c.rng.Float64() * float64(c.cfg.BatchEvery)))
		n.nextHB = c.cfg.Start.Add(time.Duration(c.rng.Float64() * float64(c.cfg.HeartbeatEvery)))
		c.nodes = append(c.nodes, n)
	}
	for i := range c.cfg.Workloads {
		w := &workload{ns: namespaces[i%len(namespaces)], name: workloadNames[i%len(workloadNames)], kind: "Deployment", port: uint16(8000 + i)}
		if i >= len(workloadNames) {
			w.name = fmt.Sprintf("%s-%d", w.name, i/len(workloadNames))
		}
		if i%2 == 1 {
			w.kind = "StatefulSet"
		} else {
			w.vip = netip.AddrFrom4([4]byte{10, 96, byte(i / 250), byte(10 + i%250)})
			w.svcUID = fmt.Sprintf("svc-%04d", i)
			w.hash = fmt.Sprintf("%x", 0x5c4f00+i)
		}
		c.workloads = append(c.workloads, w)
	}
	// Each workload depends on one to three later ones (the last ones are leaves).
	for i, w := range c.workloads[:len(c.workloads)-1] {
		for k := 0; k < 1+c.rng.IntN(3); k++ {
			d := c.workloads[i+1+c.rng.IntN(len(c.workloads)-i-1)]
			w.deps = append(w.deps, d)
		}
	}
	if c.cfg.FailAfter > 0 {
		c.failing = c.workloads[len(c.workloads)-1]
	}
	c.emitInitialObjects()
	for _, w := range c.workloads {
		for range c.cfg.Replicas {
			n := c.nodes[c.rng.IntN(len(c.nodes))]
			p := c.newPod(w, n, c.cfg.Start.Add(-time.Hour))
			c.assign(p, c.cfg.Start.Add(-time.Hour).Add(time.Second), false)
		}
	}
}

func (c *Cluster) newPod(w *workload, n *node, at time.Time) *pod {
	w.serial++
	c.uidSerial++
	p := &pod{uid: fmt.Sprintf("%08x-0000-4000-8000-%012x", c.cfg.Seed, c.uidSerial), w: w, node: n, created: at, serial: w.serial}
	if w.kind == "Deployment" {
		p.rs = w.name + "-" + w.hash
		p.name = fmt.Sprintf("%s-%05x", p.rs, c.rng.IntN(1<<20))
	} else {
		p.name = fmt.Sprintf("%s-%d", w.name, w.serial-1)
	}
	return p
}

// assign gives p an address of its node at t: p.ip when set (a reused address), else a free one.
func (c *Cluster) assign(p *pod, t time.Time, emit bool) {
	n := p.node
	if !p.ip.IsValid() {
		i := len(n.free) - 1
		p.ip, n.free = n.free[i], n.free[:i]
	}
	p.assigned = t
	if h := c.holders[p.ip]; len(h) >= 4 {
		c.holders[p.ip] = append(h[:0], h[len(h)-3:]...)
	}
	n.pods = append(n.pods, p)
	p.w.pods = append(p.w.pods, p)
	c.holders[p.ip] = append(c.holders[p.ip], p)
	c.ipCount++
	if emit {
		c.emitPodRunning(p, t)
	} else {
		c.emitPodInitial(p)
	}
}

// release frees p's address at t; its open connections end there.
func (c *Cluster) release(p *pod, t time.Time) {
	p.released = t
	n := p.node
	n.pods = remove(n.pods, p)
	n.released = append(n.released, p)
	p.w.pods = remove(p.w.pods, p)
	c.cutConnections(p, t)
	c.ipCount--
}

// churn hands the addresses of two pods of different workloads on one node to new pods of
// the other workload, within ReuseWithin of their release (each swap reuses two IPs).
func (c *Cluster) churn(t time.Time, dt time.Duration) {
	rate := c.cfg.ReusePerMinute * float64(c.ipCount) / 2 * dt.Minutes()
	for k := poisson(c.rng, rate); k > 0; k-- {
		n := c.nodes[c.rng.IntN(len(c.nodes))]
		var a, b *pod
		for _, i := range c.rng.Perm(len(n.pods)) {
			if p := n.pods[i]; a == nil {
				a = p
			} else if p.w != a.w {
				b = p
				break
			}
		}
		if a == nil || b == nil || len(a.w.pods) < 2 || len(b.w.pods) < 2 {
			continue
		}
		c.swap(a, b, t)
	}
}

func (c *Cluster) swap(a, b *pod, t time.Time) {
	c.emitPodTerminating(a, t)
	c.emitPodTerminating(b, t)
	relA := t.Add(time.Duration(c.rng.Float64() * float64(200*time.Millisecond)))
	relB := t.Add(time.Duration(c.rng.Float64() * float64(200*time.Millisecond)))
	na, nb := c.newPod(b.w, a.node, t.Add(-time.Second)), c.newPod(a.w, b.node, t.Add(-time.Second))
	c.emitPodPending(na, na.created)
	c.emitPodPending(nb, nb.created)
	// Each freed address goes to the other workload's new pod on the same node.
	na.ip, nb.ip = a.ip, b.ip
	for _, x := range []struct {
		old, next *pod
		at        time.Time
	}{{a, na, relA}, {b, nb, relB}} {
		c.at(x.at, func(t time.Time) {
			c.release(x.old, t)
			c.emitPodDeleted(x.old, t.Add(c.cfg.KubeletLatency))
			c.at(t.Add(time.Duration((0.05+0.95*c.rng.Float64())*float64(c.cfg.ReuseWithin))), func(t time.Time) { c.assign(x.next, t, true) })
		})
	}
	c.reused += 2
}

func poisson(r *rand.Rand, mean float64) int {
	if mean <= 0 {
		return 0
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// holderAt returns the pod holding addr at t (nil when none).
func (c *Cluster) holderAt(addr netip.Addr, t time.Time) *pod {
	for _, p := range c.holders[addr] {
		if p.holds(t) {
			return p
		}
	}
	return nil
}

func remove(ps []*pod, p *pod) []*pod {
	for i, x := range ps {
		if x == p {
			return append(ps[:i], ps[i+1:]...)
		}
	}
	return ps
}
