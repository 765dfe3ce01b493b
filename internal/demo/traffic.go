package demo

import (
	"math"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// externalNetworks are the named networks the demo's clients reach (see NetworksYAML).
var externalNetworks = []struct {
	name string
	addr netip.Addr
}{
	{"payments-provider", netip.MustParseAddr("203.0.113.40")},
	{"object-storage", netip.MustParseAddr("198.51.100.7")},
}

// NetworksYAML is the named-networks file matching the demo's external destinations.
const NetworksYAML = `networks:
  - name: payments-provider
    cidrs: [203.0.113.0/24]
  - name: object-storage
    cidrs: [198.51.100.0/24]
`

// conn is one open connection of the simulation.
type conn struct {
	truth          *TrueConn
	client, server *pod // server nil: external or nobody
	cport          uint16
	dst            netip.Addr // what the client dialled
	dport          uint16
	start, end     time.Time
	outcome        flow.Outcome
	reqBytes       uint64
	respBytes      uint64
	serverSide     bool   // the server accepts (its exporter reports a record)
	cid            uint64 // the client exporter's conn_id
}

func (c *Cluster) openConnections(t time.Time, dt time.Duration) {
	for k := poisson(c.rng, c.cfg.FlowsPerSecond*dt.Seconds()); k > 0; k-- {
		c.openConnection(t.Add(-c.uniform(dt)))
	}
}

func (c *Cluster) openConnection(start time.Time) {
	w := c.workloads[c.rng.IntN(len(c.workloads)-1)]
	if len(w.pods) == 0 || len(w.deps) == 0 {
		return
	}
	cl := w.pods[c.rng.IntN(len(w.pods))]
	if !cl.holds(start) {
		return
	}
	cn := &conn{client: cl, start: start, outcome: flow.OK, reqBytes: 200 + uint64(c.rng.IntN(2000)), respBytes: 500 + uint64(c.rng.IntN(50000))}
	cl.node.connID++
	cn.cid = cl.node.connID
	cn.cport = uint16(32768 + (cn.cid*7919)%28000)
	dur := time.Duration(math.Min(c.rng.ExpFloat64()*0.2, 5) * float64(time.Second))
	cn.end = start.Add(time.Millisecond + dur)
	tr := &TrueConn{ClientUID: cl.uid, ClientWorkload: w.ns + "/" + w.name, ClientZone: cl.node.zone}
	cn.truth = tr
	switch d := w.deps[c.rng.IntN(len(w.deps))]; {
	case c.rng.Float64() < c.cfg.ExternalShare:
		x := externalNetworks[c.rng.IntN(len(externalNetworks))]
		cn.dst, cn.dport, tr.Network = x.addr, 443, x.name
	case len(d.pods) == 0:
		return
	case d.kind == "Deployment":
		cn.server = d.pods[c.rng.IntN(len(d.pods))]
		cn.dst, cn.dport = d.vip, d.port
		tr.Service = d.ns + "/" + d.name
	default:
		cn.dst, cn.dport = c.directTarget(d, start), d.port
		cn.server = c.holderAt(cn.dst, start)
	}
	if cn.server != nil {
		tr.ServerUID, tr.ServerWorkload, tr.ServerZone = cn.server.uid, cn.server.w.ns+"/"+cn.server.w.name, cn.server.node.zone
		cn.serverSide = true
		if cn.server.w.port != cn.dport || (cn.server.w == c.failing && start.Sub(c.cfg.Start) >= c.cfg.FailAfter) {
			// Nothing listens on the dialled port (a stale address now held by another
			// workload), or the dependency fails: refused, only the client reports it.
			cn.outcome, cn.serverSide, cn.end = flow.Refused, false, start.Add(time.Millisecond)
			cn.reqBytes, cn.respBytes = 0, 0
		}
	} else if tr.Network == "" {
		// Nobody holds the address: the connect times out, only the client reports it.
		tr.NoHolder = true
		cn.outcome, cn.end, cn.reqBytes, cn.respBytes = flow.Timeout, start.Add(3*time.Second), 0, 0
	}
	tr.ClientKey = cl.node.exporter + "/" + strconv.FormatUint(cn.cid, 10)
	tr.ServerObserved = cn.serverSide
	c.insertConn(cn)
}

// directTarget is the pod address a client dials directly: a current pod of d, or from a
// stale view (an address d's pod held until recently; it may now be another workload's).
func (c *Cluster) directTarget(d *workload, t time.Time) netip.Addr {
	if c.rng.Float64() < c.cfg.StaleIPShare {
		for _, n := range c.nodes {
			for i := len(n.released) - 1; i >= 0; i-- {
				if p := n.released[i]; p.w == d && t.Sub(p.released) < 10*time.Second {
					return p.ip
				}
			}
		}
	}
	return d.pods[c.rng.IntN(len(d.pods))].ip
}

func (c *Cluster) insertConn(cn *conn) {
	i := sort.Search(len(c.conns), func(i int) bool { return c.conns[i].end.After(cn.end) })
	c.conns = append(c.conns, nil)
	copy(c.conns[i+1:], c.conns[i:])
	c.conns[i] = cn
}

// closeConnections ends the connections due by t: both sides' exporters record them.
func (c *Cluster) closeConnections(t time.Time) {
	i := 0
	for i < len(c.conns) && !c.conns[i].end.After(t) {
		c.record(c.conns[i])
		i++
	}
	c.conns = c.conns[i:]
}

// cutConnections ends p's open connections at t (its address was released): reset.
func (c *Cluster) cutConnections(p *pod, t time.Time) {
	kept := c.conns[:0]
	for _, cn := range c.conns {
		if cn.client == p || cn.server == p {
			cn.end, cn.outcome = t, flow.Reset
			c.record(cn)
			continue
		}
		kept = append(kept, cn)
	}
	c.conns = kept
}

func (c *Cluster) record(cn *conn) {
	cl := cn.client
	r := flow.Record{
		ConnID: cn.cid, Family: flow.IPv4, LocalAddr: cl.ip, LocalPort: cn.cport, RemoteAddr: cn.dst, RemotePort: cn.dport,
		Direction: flow.Client, Workload: flow.Workload{Kind: flow.KindPod, PodUID: cl.uid, Runtime: "containerd"},
		Start: cl.node.clock(cn.start), End: cl.node.clock(cn.end), StartKnown: true,
		BytesSent: cn.reqBytes, BytesReceived: cn.respBytes, SegsSent: 3, SegsReceived: 4,
		SrttUs: 200 + uint32(c.rng.IntN(300)), Outcome: cn.outcome, CloseState: "CLOSE",
	}
	if cn.truth.Service != "" && cn.server != nil && natted(cn.cid, c.cfg.NATShare) {
		r.NatRemoteAddr, r.NatRemotePort = cn.server.ip, cn.server.w.port // kube-proxy's DNAT, as conntrack reports it
	}
	cl.node.records = append(cl.node.records, r)
	c.truth.add(cn.truth)
	if !cn.serverSide {
		return
	}
	sv := cn.server
	sv.node.connID++
	s := flow.Record{
		ConnID: sv.node.connID, Family: flow.IPv4, LocalAddr: sv.ip, LocalPort: sv.w.port, RemoteAddr: cl.ip, RemotePort: cn.cport,
		Direction: flow.Server, Workload: flow.Workload{Kind: flow.KindPod, PodUID: sv.uid, Runtime: "containerd"},
		Start: sv.node.clock(cn.start.Add(150 * time.Microsecond)), End: sv.node.clock(cn.end.Add(100 * time.Microsecond)), StartKnown: true,
		BytesSent: cn.respBytes, BytesReceived: cn.reqBytes, SegsSent: 4, SegsReceived: 3,
		SrttUs: 150 + uint32(c.rng.IntN(300)), Outcome: cn.outcome, CloseState: "CLOSE",
	}
	sv.node.records = append(sv.node.records, s)
	cn.truth.ServerKey = sv.node.exporter + "/" + strconv.FormatUint(s.ConnID, 10)
	c.truth.add(cn.truth)
}

// shipRecords queues the node's records as one batch.
func (c *Cluster) shipRecords(n *node, t time.Time) {
	if len(n.records) == 0 {
		return
	}
	n.seq++
	b := &flowbatch.Batch{Header: c.header(n), Records: n.records}
	n.records = nil
	c.queue.push(Event{At: t.Add(c.uniform(c.cfg.TransportDelay)), Batch: b})
}

func (c *Cluster) header(n *node) flowbatch.Header {
	return flowbatch.Header{Major: flowbatch.MajorVersion, Minor: flowbatch.MinorVersion, ExporterID: n.exporter, NodeName: n.name, BootID: n.boot, Sequence: n.seq}
}

// heartbeat queues the node's ownership heartbeat (unless lost): every pod it holds, the
// pods released in the last three periods with their end, and the node's own address.
func (c *Cluster) heartbeat(n *node, t time.Time) {
	hb := &flowbatch.Heartbeat{Node: n.name, Time: n.clock(t), Complete: true}
	hb.Ownerships = append(hb.Ownerships, flowbatch.Ownership{Addr: n.ip, Workload: flow.Workload{Kind: flow.KindHost}, From: n.clock(n.created), To: time.Time{}})
	for _, p := range n.pods {
		if p.holds(t) {
			hb.Ownerships = append(hb.Ownerships, c.ownershipOf(p, n, time.Time{}))
		}
	}
	kept := n.released[:0]
	for _, p := range n.released {
		if t.Sub(p.released) < 3*c.cfg.HeartbeatEvery {
			hb.Ownerships = append(hb.Ownerships, c.ownershipOf(p, n, n.clock(p.released)))
			kept = append(kept, p)
		}
	}
	n.released = kept
	if c.rng.Float64() < c.cfg.HeartbeatLoss {
		return
	}
	n.seq++
	c.queue.push(Event{At: t.Add(c.uniform(c.cfg.HeartbeatDelay)), Batch: &flowbatch.Batch{Header: c.header(n), Heartbeat: hb}})
}

func (c *Cluster) ownershipOf(p *pod, n *node, to time.Time) flowbatch.Ownership {
	return flowbatch.Ownership{
		Addr: p.ip, Workload: flow.Workload{Kind: flow.KindPod, PodUID: p.uid, Runtime: "containerd"},
		Namespace: p.w.ns, PodName: p.name, From: n.clock(p.assigned), To: to,
	}
}

// natted picks the connections whose translation the client's exporter reports, by their id
// (the scenario's random sequence stays as it was).
func natted(cid uint64, share float64) bool {
	return float64(cid*2654435761%1000) < share*1000
}
