package identity

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/testgate"
	"github.com/flowscope/flowscope/internal/testnet"
)

// TestResolverRealCgroups resolves ids of real cgroups, shaped like a kubelet pod and a systemd
// service, on the host's own cgroup v2 mount, by file handle and by walking the tree.
func TestResolverRealCgroups(t *testing.T) {
	testgate.BPF(t)
	podPath := testnet.KubeletPodPath("burstable", uid, "cri-containerd", cid)
	pod := testnet.NewCgroup(t, podPath)
	sandbox := testnet.NewCgroup(t, testnet.KubeletPodPath("", uid, "crio", sid))
	svc := testnet.NewCgroup(t, "system.slice/nginx.service")
	podSlice := testnet.NewCgroup(t, testnet.KubeletPodPath("besteffort", uid, "", ""))

	for _, noHandles := range []bool{false, true} {
		r, err := NewResolver(Config{NoHandles: noHandles}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		if !noHandles && r.handle == nil {
			t.Error("open_by_handle_at is not used as root")
		}
		for _, tc := range []struct {
			c    *testnet.Cgroup
			want flow.Workload
		}{
			{pod, flow.Workload{Kind: flow.KindPod, PodUID: uid, ContainerID: cid, Runtime: RuntimeContainerd, Unit: "cri-containerd-" + cid + ".scope"}},
			{sandbox, flow.Workload{Kind: flow.KindPod, PodUID: uid, ContainerID: sid, Runtime: RuntimeCRIO, Unit: "crio-" + sid + ".scope"}},
			{svc, flow.Workload{Kind: flow.KindUnit, Unit: "nginx.service"}},
			{podSlice, flow.Workload{Kind: flow.KindPod, PodUID: uid}},
		} {
			tc.want.CgroupPath = tc.c.Path
			tc.want.Pid, tc.want.Comm = 1, "init"
			if diff := cmp.Diff(tc.want, r.Workload(tc.c.ID(), 1, "init")); diff != "" {
				t.Errorf("handles=%v: Workload(%d) for %s (-want +got):\n%s", !noHandles, tc.c.ID(), tc.c.Path, diff)
			}
		}
		if !strings.HasPrefix(pod.Path, "/fst-") {
			t.Errorf("pod path %q", pod.Path)
		}
	}
}

// TestResolverRemovedCgroup: an id whose cgroup is gone resolves to unknown, not to an error.
func TestResolverRemovedCgroup(t *testing.T) {
	testgate.BPF(t)
	c, err := testnet.CreateCgroup("system.slice/gone.service")
	if err != nil {
		t.Fatal(err)
	}
	id := c.ID()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, noHandles := range []bool{false, true} {
		r, err := NewResolver(Config{NoHandles: noHandles}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if w := r.Workload(id, 0, ""); w.Kind != flow.KindUnknown {
			t.Errorf("handles=%v: removed cgroup %d resolved to %+v", !noHandles, id, w)
		}
		r.Close()
	}
}

// BenchmarkResolveMiss measures a cache miss on the real cgroup v2 mount: one open_by_handle_at
// and readlink (handle), or one walk of the whole tree (walk).
func BenchmarkResolveMiss(b *testing.B) {
	testgate.BPF(b)
	c := testnet.NewCgroup(b, testnet.KubeletPodPath("burstable", uid, "cri-containerd", cid))
	for _, noHandles := range []bool{false, true} {
		name := map[bool]string{false: "handle", true: "walk"}[noHandles]
		b.Run(name, func(b *testing.B) {
			r, err := NewResolver(Config{NoHandles: noHandles, RewalkInterval: 1}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			for b.Loop() {
				r.walked = nil
				if _, err := r.paths(c.ID()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
