package exporter

import (
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
