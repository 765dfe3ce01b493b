package exporter

import (
	"net"
	"net/netip"
	"time"

	"github.com/flowscope/flowscope/internal/exporter/flowtable"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// owners learns which local addresses this node's workloads hold, and since when: every
// network namespace's interface addresses belong to the workload of the processes in it (a
// pod's, for a pod namespace; the host's, for the exporter's own). It is the node's side of
// attribution in time: the collector attributes remote addresses with these ranges.
type owners struct {
	node    string
	byPid   func(pid uint32) flow.Workload
	addrsIn func(path string) ([]netip.Addr, error)
	// listeners returns the listening sockets of the node's own network namespace (nil: none
	// known): a host-network workload holds (address, port) of its listeners, not the address.
	listeners func() []flowtable.Listener
	held      map[netip.AddrPort]ownership // port 0: the address itself
}

type ownership struct {
	w           flow.Workload
	netns       uint32
	from, until time.Time // first and last time seen
}

func newOwners(node string, byPid func(uint32) flow.Workload) *owners {
	return &owners{node: node, byPid: byPid, addrsIn: namespaceAddrs, held: map[netip.AddrPort]ownership{}}
}

// heartbeat reads every namespace's addresses at now and returns the node's complete list of
// ownerships: those held now (To zero), and those that ended since the last heartbeat (To is
// the last time they were seen, so the collector never stretches an ownership past what was
// observed).
func (o *owners) heartbeat(ns *namespaces, now time.Time) flowbatch.Heartbeat {
	seen := map[netip.AddrPort]bool{}
	see := func(k netip.AddrPort, w flow.Workload, ino uint32) {
		seen[k] = true
		cur, ok := o.held[k]
		if !ok || cur.w != w || cur.netns != ino {
			cur = ownership{w: w, netns: ino, from: now} // new, or a new holder: a new range
		}
		cur.until = now
		o.held[k] = cur
	}
	for ino, path := range ns.paths {
		addrs, err := o.addrsIn(path)
		if err != nil || len(addrs) == 0 {
			continue
		}
		w := flow.Workload{Kind: flow.KindHost}
		if ino != ns.self {
			if w = o.workloadOf(ns.pids[ino]); w.Kind == flow.KindUnknown {
				continue // no process to name it by (a namespace kept by a bind mount only): claim nothing
			}
		}
		for _, a := range addrs {
			see(netip.AddrPortFrom(a, 0), w, ino)
		}
		if ino == ns.self {
			o.hostListeners(addrs, func(k netip.AddrPort, w flow.Workload) { see(k, w, ino) })
		}
	}
	hb := flowbatch.Heartbeat{Node: o.node, Time: now, Complete: true}
	for k, h := range o.held {
		own := flowbatch.Ownership{Addr: k.Addr(), Port: k.Port(), Workload: h.w, Netns: h.netns, From: h.from}
		if !seen[k] {
			own.To = h.until
			delete(o.held, k)
		}
		hb.Ownerships = append(hb.Ownerships, own)
	}
	return hb
}

// hostListeners names the listening sockets of the node's own namespace held by a workload
// other than the host itself (a hostNetwork pod, a container, a systemd unit): each holds
// (address, port) for its bound address, or for every node address when it listens on all.
func (o *owners) hostListeners(addrs []netip.Addr, see func(netip.AddrPort, flow.Workload)) {
	if o.listeners == nil {
		return
	}
	for _, l := range o.listeners() {
		if l.Pid == 0 {
			continue // no single process holds it: nothing to name it by
		}
		w := o.workloadOf([]uint32{l.Pid})
		switch w.Kind {
		case flow.KindPod, flow.KindContainer, flow.KindUnit:
		default:
			continue // the host's own: the address already names the node
		}
		if l.Bound.IsValid() {
			if !l.Bound.IsLoopback() {
				see(netip.AddrPortFrom(l.Bound.Unmap(), l.Port), w)
			}
			continue
		}
		for _, a := range addrs {
			see(netip.AddrPortFrom(a, l.Port), w)
		}
	}
}

// workloadOf names a namespace by its processes: a pod's if any process is in a pod (all of a
// pod's processes share its UID), else the first one's.
func (o *owners) workloadOf(pids []uint32) flow.Workload {
	var first flow.Workload
	for i, pid := range pids {
		w := o.byPid(pid)
		if w.Kind == flow.KindPod {
			w.ContainerID, w.Pid, w.Comm = "", 0, "" // the pod holds the address, not one container
			return w
		}
		if i == 0 {
			first = w
		}
	}
	first.Pid, first.Comm = 0, ""
	if first.Kind == "" {
		first.Kind = flow.KindUnknown
	}
	return first
}

// namespaceAddrs lists the routable unicast addresses of the interfaces of the network
// namespace at path ("" for the exporter's own): no loopback, no link-local.
func namespaceAddrs(path string) ([]netip.Addr, error) {
	var out []netip.Addr
	err := inNamespace(path, func() error {
		ifaddrs, err := net.InterfaceAddrs() // a netlink socket opened in this thread's namespace
		if err != nil {
			return err
		}
		for _, ia := range ifaddrs {
			pfx, err := netip.ParsePrefix(ia.String())
			if err != nil {
				continue
			}
			a := pfx.Addr().Unmap()
			if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
				continue
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}
