package exporter

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
	"github.com/flowscope/flowscope/internal/testnet"
)

// TestHeartbeatNamesPodAddresses runs a process inside namespace B and a kubelet-shaped pod
// cgroup, and expects B's addresses to be reported as held by that pod.
func TestHeartbeatNamesPodAddresses(t *testing.T) {
	_, srv, p := pairEndpoints(t, false)
	dir, err := os.Open(srv.cg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	cmd := exec.Command("ip", "netns", "exec", p.B.Name, "sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := startExporter(t, Config{HeartbeatEvery: 200 * time.Millisecond}, tracer.Config{})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.cap.mu.Lock()
		hbs := append([]flowbatch.Heartbeat(nil), r.cap.hbs...)
		r.cap.mu.Unlock()
		if len(hbs) > 0 {
			last := hbs[len(hbs)-1]
			found := map[string]flow.Workload{}
			for _, o := range last.Ownerships {
				found[o.Addr.String()] = o.Workload
			}
			w4, w6 := found[testnet.AddrB4.String()], found[testnet.AddrB6.String()]
			if w4.PodUID == podUID && w6.PodUID == podUID && w4.Kind == flow.KindPod && last.Complete {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no heartbeat names namespace B's addresses as held by the pod")
}

// TestHeartbeatNamesHostNetworkListener: a process of a pod listens in the node's own network
// namespace (a hostNetwork pod). The heartbeats name (node address, port) as held by the pod,
// and the records of sockets in the node's namespace say host_network.
func TestHeartbeatNamesHostNetworkListener(t *testing.T) {
	_, srv, _ := pairEndpoints(t, false)
	ln, err := net.Listen("tcp4", "0.0.0.0:0") // the node's namespace: this process's
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	dir, err := os.Open(srv.cg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	// The pod's process holds the listener alone (the listener's owner is its single holder).
	cmd := exec.Command("sleep", "60")
	cmd.ExtraFiles = []*os.File{lf}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := startExporter(t, Config{HeartbeatEvery: 200 * time.Millisecond, SnapshotEvery: 300 * time.Millisecond}, tracer.Config{})
	c, err := net.Dial("tcp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String())
	if err != nil {
		t.Fatal(err)
	}
	cport := uint16(c.LocalAddr().(*net.TCPAddr).Port)
	c.Close()
	recs := r.cap.waitFor(t, 1, 10*time.Second, func(rec *flow.Record) bool {
		return rec.LocalPort == cport && rec.RemotePort == port && !rec.Interim
	})
	if !recs[0].HostNetwork {
		t.Errorf("a socket of the node's namespace without host_network: %+v", recs[0])
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		r.cap.mu.Lock()
		hbs := append([]flowbatch.Heartbeat(nil), r.cap.hbs...)
		r.cap.mu.Unlock()
		if len(hbs) > 0 {
			for _, o := range hbs[len(hbs)-1].Ownerships {
				if o.Port == port && o.Workload.Kind == flow.KindPod && o.Workload.PodUID == podUID && !o.Addr.IsLoopback() {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no heartbeat names (node address, %d) as held by the pod", port)
}
