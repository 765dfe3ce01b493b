package identity_test

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/exporter/identity"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/testgate"
	"github.com/flowscope/flowscope/internal/testnet"
)

// Names shared with the package's own tests (which cannot import testnet: it imports identity).
const (
	uid = "0f3c5a8e-7b1d-4c2e-9a6f-1d2e3f4a5b6c"
	cid = "4c0c7bd7c6c1e2e35a4a2f1e0a5b8a3e9d1f2c3b4a5968778695a4b3c2d1e0f9"
	sid = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"
)

// TestResolverRealCgroups resolves ids of real cgroups, shaped like a kubelet pod and a systemd
// service, on the host's own cgroup v2 mount, by file handle and by walking the tree.
func TestResolverRealCgroups(t *testing.T) {
	testgate.BPF(t)
	pod := testnet.NewCgroup(t, testnet.KubeletPodPath("burstable", uid, "cri-containerd", cid))
	sandbox := testnet.NewCgroup(t, testnet.KubeletPodPath("", uid, "crio", sid))
	svc := testnet.NewCgroup(t, "system.slice/nginx.service")
	podSlice := testnet.NewCgroup(t, testnet.KubeletPodPath("besteffort", uid, "", ""))

	for _, noHandles := range []bool{false, true} {
		r, err := identity.NewResolver(identity.Config{NoHandles: noHandles}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		if !noHandles && !identity.ByHandle(r) {
			t.Error("open_by_handle_at is not used as root")
		}
		for _, tc := range []struct {
			c    *testnet.Cgroup
			want flow.Workload
		}{
			{pod, flow.Workload{Kind: flow.KindPod, PodUID: uid, ContainerID: cid, Runtime: identity.RuntimeContainerd, Unit: "cri-containerd-" + cid + ".scope"}},
			{sandbox, flow.Workload{Kind: flow.KindPod, PodUID: uid, ContainerID: sid, Runtime: identity.RuntimeCRIO, Unit: "crio-" + sid + ".scope"}},
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
		r, err := identity.NewResolver(identity.Config{NoHandles: noHandles}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
			r, err := identity.NewResolver(identity.Config{NoHandles: noHandles, RewalkInterval: 1}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			for b.Loop() {
				if _, err := identity.ResolvePath(r, c.ID()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestResolverNamesSocketCgroup: a listener created inside a kubelet-shaped cgroup has, by the
// kernel's own account (sock_diag), a cgroup id that the resolver names as that pod's container.
func TestResolverNamesSocketCgroup(t *testing.T) {
	testgate.BPF(t)
	c := testnet.NewCgroup(t, testnet.KubeletPodPath("besteffort", uid, "docker", cid))
	host, err := testnet.Host()
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := c.Do(func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, err := testnet.ListenerDiag(host, ln)
	if err != nil {
		t.Fatal(err)
	}
	r, err := identity.NewResolver(identity.Config{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := r.Workload(d.CgroupID, 0, "")
	if w.Kind != flow.KindPod || w.PodUID != uid || w.ContainerID != cid || w.Runtime != identity.RuntimeDocker {
		t.Errorf("socket in %s (cgroup %d): %+v", c.Path, d.CgroupID, w)
	}
}
