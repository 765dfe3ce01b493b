package exporter

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowscope/flowscope/internal/exporter/flowtable"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

func TestOwnersHeartbeatRanges(t *testing.T) {
	pod := func(uid string) flow.Workload {
		return flow.Workload{Kind: flow.KindPod, PodUID: uid, ContainerID: "c", Pid: 7}
	}
	holder := map[uint32]flow.Workload{10: pod("a")}
	addrs := map[string][]netip.Addr{"/ns/1": {netip.MustParseAddr("10.1.0.5")}, "": {netip.MustParseAddr("192.0.2.10")}}
	o := newOwners("node-1", func(pid uint32) flow.Workload { return holder[pid] })
	o.addrsIn = func(path string) ([]netip.Addr, error) { return addrs[path], nil }
	addrs["/run/netns/empty"] = []netip.Addr{netip.MustParseAddr("10.9.9.9")} // no process in it
	ns := &namespaces{self: 1, paths: map[uint32]string{1: "", 2: "/ns/1", 3: "/run/netns/empty"}, pids: map[uint32][]uint32{2: {10}}}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	byAddr := func(hb flowbatch.Heartbeat) map[string]flowbatch.Ownership {
		m := map[string]flowbatch.Ownership{}
		for _, o := range hb.Ownerships {
			m[o.Addr.String()] = o
		}
		return m
	}

	hb := byAddr(o.heartbeat(ns, t0))
	if p := hb["10.1.0.5"]; p.Workload.Kind != flow.KindPod || p.Workload.PodUID != "a" || p.Workload.ContainerID != "" || !p.From.Equal(t0) || !p.To.IsZero() || p.Netns != 2 {
		t.Fatalf("pod address: %+v", p)
	}
	if h := hb["192.0.2.10"]; h.Workload.Kind != flow.KindHost {
		t.Fatalf("host address: %+v", h)
	}
	if e, ok := hb["10.9.9.9"]; ok {
		t.Fatalf("a namespace without processes claimed an address: %+v", e)
	}
	// still held: the range keeps its start
	hb = byAddr(o.heartbeat(ns, t0.Add(5*time.Second)))
	if p := hb["10.1.0.5"]; !p.From.Equal(t0) || !p.To.IsZero() {
		t.Fatalf("held address: %+v", p)
	}
	// the pod is gone: the range ends when it was last seen, then is forgotten
	addrs["/ns/1"] = nil
	hb = byAddr(o.heartbeat(ns, t0.Add(10*time.Second)))
	if p := hb["10.1.0.5"]; !p.To.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("ended address: %+v", p)
	}
	if _, ok := byAddr(o.heartbeat(ns, t0.Add(15*time.Second)))["10.1.0.5"]; ok {
		t.Fatal("an ended ownership was sent twice")
	}
	// the address comes back for another pod: a new range from the new sighting
	addrs["/ns/1"] = []netip.Addr{netip.MustParseAddr("10.1.0.5")}
	holder[10] = pod("b")
	hb = byAddr(o.heartbeat(ns, t0.Add(20*time.Second)))
	if p := hb["10.1.0.5"]; p.Workload.PodUID != "b" || !p.From.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("reused address: %+v", p)
	}
}

// TestOwnersHostNetworkListeners: a host-network pod's listener (in the node's own namespace)
// is reported as (address, port) held by the pod, for every node address when it listens on
// all of them; the host's own listeners and unowned ones claim nothing; a listener that goes
// ends its range.
func TestOwnersHostNetworkListeners(t *testing.T) {
	node4, node6 := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")
	agent := flow.Workload{Kind: flow.KindPod, PodUID: "agent", ContainerID: "c", Pid: 20}
	holder := map[uint32]flow.Workload{20: agent, 30: {Kind: flow.KindHost}, 40: {Kind: flow.KindUnit, Unit: "sshd.service"}}
	o := newOwners("node-1", func(pid uint32) flow.Workload { return holder[pid] })
	o.addrsIn = func(string) ([]netip.Addr, error) { return []netip.Addr{node4, node6}, nil }
	lns := []flowtable.Listener{
		{Port: 9100, Pid: 20},               // the agent, on all addresses
		{Port: 9101, Pid: 20, Bound: node4}, // the agent, on one
		{Port: 9102, Pid: 20, Bound: netip.MustParseAddr("127.0.0.1")},
		{Port: 22, Pid: 40},    // a systemd unit
		{Port: 10250, Pid: 30}, // the host itself (kubelet): the node's address names it
		{Port: 53},             // held by several processes: unnamed
	}
	o.listeners = func() []flowtable.Listener { return lns }
	ns := &namespaces{self: 1, paths: map[uint32]string{1: ""}}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	got := func(hb flowbatch.Heartbeat) map[string]string {
		m := map[string]string{}
		for _, ow := range hb.Ownerships {
			if ow.Port != 0 {
				m[netip.AddrPortFrom(ow.Addr, ow.Port).String()] = ow.Workload.Key()
				if !ow.To.IsZero() {
					m[netip.AddrPortFrom(ow.Addr, ow.Port).String()] += " ended"
				}
			}
		}
		return m
	}
	want := map[string]string{
		"192.0.2.10:9100": "pod/agent", "[2001:db8::10]:9100": "pod/agent", "192.0.2.10:9101": "pod/agent",
		"192.0.2.10:22": "systemd/sshd.service", "[2001:db8::10]:22": "systemd/sshd.service",
	}
	if diff := cmp.Diff(want, got(o.heartbeat(ns, t0))); diff != "" {
		t.Errorf("listeners (-want +got):\n%s", diff)
	}
	lns = lns[1:]
	hb := got(o.heartbeat(ns, t0.Add(5*time.Second)))
	if hb["192.0.2.10:9100"] != "pod/agent ended" || hb["192.0.2.10:9101"] != "pod/agent" {
		t.Errorf("after the listener went: %v", hb)
	}
}
