// Package flowgen generates deterministic synthetic attributed connections (flow.Conn) of a
// made-up cluster: workloads in namespaces calling each other directly or through Services,
// egress to named networks, unattributed ingress, failures, retransmits and RTT. Tests load its
// fixed data sets into a real store; the store benchmark uses it for volume.
package flowgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
)

// Config describes the cluster.
type Config struct {
	Seed             uint64
	Namespaces       int
	WorkloadsPerNS   int
	PodsPerWorkload  int
	Nodes            int
	EdgesPerWorkload int // outgoing dependencies of each workload
}

// Small is the fixed data set of the golden tests: 3 namespaces of 4 workloads.
var Small = Config{Seed: 42, Namespaces: 3, WorkloadsPerNS: 4, PodsPerWorkload: 2, Nodes: 3, EdgesPerWorkload: 2}

// Zone is the zone of node i: nodes alternate between zone-a and zone-b.
func Zone(node int) string { return fmt.Sprintf("zone-%c", 'a'+node%2) }

// Workload is a generated workload.
type Workload struct {
	Namespace, Name string
	Port            uint16
	Pods            []flow.Endpoint
	Service         *flow.Endpoint // its ClusterIP Service
}

// Dep is a generated dependency (an edge of the ground truth).
type Dep struct {
	Client, Server *Workload
	ViaService     bool
	Network        string    // egress to this named network instead of Server
	FailRate       float64   // share of connections that fail
	Retransmit     float64   // mean retransmits per connection
	RTTus          float64   // median RTT
	Until          time.Time // the dependency stops at this time (zero: never)
	FailFrom       time.Time // from this time on half of its connections fail (zero: never)
}

// Cluster is a generated cluster and its dependencies.
type Cluster struct {
	Workloads []*Workload
	Deps      []Dep
	rng       *rand.Rand
	seq       uint64
}

// New builds the cluster of cfg.
func New(cfg Config) *Cluster {
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	c := &Cluster{rng: rng}
	ip := netip.MustParseAddr("10.0.0.10")
	svcIP := netip.MustParseAddr("10.96.0.10")
	for n := range cfg.Namespaces {
		ns := fmt.Sprintf("ns%d", n)
		for w := range cfg.WorkloadsPerNS {
			wl := &Workload{Namespace: ns, Name: fmt.Sprintf("app%d", w), Port: uint16(8000 + w%4*80)}
			for p := range cfg.PodsPerWorkload {
				node := (n + w + p) % max(cfg.Nodes, 1)
				wl.Pods = append(wl.Pods, flow.Endpoint{Addr: ip, Kind: flow.EndpointPod, Namespace: ns, Workload: wl.Name,
					WorkloadKind: "Deployment", Pod: fmt.Sprintf("%s-%d", wl.Name, p), PodUID: fmt.Sprintf("uid-%s-%s-%d", ns, wl.Name, p),
					Node: fmt.Sprintf("node%d", node), Zone: Zone(node), Labels: map[string]string{"app": wl.Name, "tier": fmt.Sprint("t", w%2)}})
				ip = ip.Next()
			}
			wl.Service = &flow.Endpoint{Addr: svcIP, Port: 80, Kind: flow.EndpointService, Namespace: ns, Service: wl.Name}
			svcIP = svcIP.Next()
			c.Workloads = append(c.Workloads, wl)
		}
	}
	for i, wl := range c.Workloads {
		for e := range cfg.EdgesPerWorkload {
			d := Dep{Client: wl, ViaService: e%2 == 0, FailRate: 0.002, Retransmit: 0.05, RTTus: 200 + float64(rng.IntN(800))}
			switch {
			case e == cfg.EdgesPerWorkload-1 && i%5 == 4:
				d.Network = "internet"
				d.RTTus = 20000
			default:
				j := (i + 1 + e*7 + rng.IntN(3)) % len(c.Workloads)
				if j == i {
					j = (j + 1) % len(c.Workloads)
				}
				d.Server = c.Workloads[j]
			}
			if i%7 == 3 && e == 0 {
				d.FailRate, d.Retransmit = 0.3, 2
			}
			c.Deps = append(c.Deps, d)
		}
	}
	return c
}

// Script makes the cluster's history change at t: the second dependency vanishes and the
// third starts failing, for pathway detection to find.
func (c *Cluster) Script(t time.Time) {
	c.Deps[1].Until = t
	c.Deps[2].FailFrom = t
}

// Conns returns n connections ending between start and start+span, in time order.
func (c *Cluster) Conns(start time.Time, span time.Duration, n int) []flow.Conn {
	out := make([]flow.Conn, n)
	for i := range out {
		end := start.Add(time.Duration(float64(span) * float64(i) / float64(n)))
		out[i] = c.conn(end)
	}
	return out
}

func (c *Cluster) conn(end time.Time) flow.Conn {
	rng := c.rng
	c.seq++
	var d Dep
	if rng.IntN(50) == 0 {
		return c.unattributed(end)
	}
	d = c.Deps[rng.IntN(len(c.Deps))]
	for !d.Until.IsZero() && !end.Before(d.Until) {
		d = c.Deps[rng.IntN(len(c.Deps))]
	}
	if !d.FailFrom.IsZero() && !end.Before(d.FailFrom) {
		d.FailRate = 0.5
	}
	client := d.Client.Pods[rng.IntN(len(d.Client.Pods))]
	client.Port = uint16(32768 + rng.IntN(28000))
	conn := flow.Conn{ConnKey: fmt.Sprintf("gen-%d", c.seq), Observed: "both", Client: client, Outcome: flow.OK}
	if d.Network != "" {
		conn.Server = flow.Endpoint{Addr: netip.AddrFrom4([4]byte{93, 184, byte(rng.IntN(4)), byte(1 + rng.IntN(200))}), Port: 443, Kind: flow.EndpointNetwork, Network: d.Network}
		conn.Observed = "client"
	} else {
		conn.Server = d.Server.Pods[rng.IntN(len(d.Server.Pods))]
		conn.Server.Port = d.Server.Port
		if d.ViaService {
			vip := *d.Server.Service
			conn.VIP = &vip
		}
	}
	dur := time.Duration(1+rng.IntN(5000)) * time.Millisecond
	conn.Start, conn.End = end.Add(-dur), end
	conn.ClientSrttUs = uint32(d.RTTus * math.Exp(rng.NormFloat64()*0.3))
	conn.ServerSrttUs = conn.ClientSrttUs
	if rng.Float64() < d.FailRate {
		switch rng.IntN(3) {
		case 0:
			conn.Outcome = flow.Refused
		case 1:
			conn.Outcome = flow.Timeout
		default:
			conn.Outcome, conn.Resets = flow.Reset, 1
		}
		if conn.Outcome != flow.Reset {
			conn.ClientSrttUs, conn.ServerSrttUs = 0, 0
			return conn
		}
	}
	conn.BytesClientToServer = uint64(math.Exp(rng.Float64()*9)) + 100
	conn.BytesServerToClient = uint64(math.Exp(rng.Float64()*12)) + 100
	if rng.Float64() < d.Retransmit/4 {
		conn.Retransmits = uint64(1 + rng.IntN(4))
		conn.BytesRetransmitted = conn.Retransmits * 1448
	}
	return conn
}

func (c *Cluster) unattributed(end time.Time) flow.Conn {
	rng := c.rng
	srv := c.Workloads[rng.IntN(len(c.Workloads))]
	server := srv.Pods[0]
	server.Port = srv.Port
	reason := []flow.Reason{flow.ReasonNoOwner, flow.ReasonGap, flow.ReasonStale}[rng.IntN(3)]
	return flow.Conn{
		ConnKey: fmt.Sprintf("gen-%d", c.seq), Start: end.Add(-time.Second), End: end, Observed: "server",
		Client:              flow.Endpoint{Addr: netip.AddrFrom4([4]byte{10, 1, byte(rng.IntN(4)), byte(rng.IntN(250))}), Port: uint16(40000 + rng.IntN(20000)), Kind: flow.EndpointUnattributed, Reason: reason},
		Server:              server,
		BytesClientToServer: 300, BytesServerToClient: 1200, ServerSrttUs: 400, Outcome: flow.OK,
	}
}
