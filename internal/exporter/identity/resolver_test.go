package identity

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/flow"
)

// fakeHost is a directory tree standing in for the cgroup v2 mount, a mount table naming it,
// a proc tree and a clock.
type fakeHost struct {
	root, proc, mountinfo string
	now                   time.Time
}

func newFakeHost(t *testing.T, layout Layout) *fakeHost {
	t.Helper()
	dir := t.TempDir()
	h := &fakeHost{root: filepath.Join(dir, "cgroup"), proc: filepath.Join(dir, "proc"), mountinfo: filepath.Join(dir, "mountinfo"), now: time.Unix(1e9, 0)}
	for _, d := range []string{h.root, h.proc} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var table string
	switch layout {
	case LayoutUnified:
		table = fmt.Sprintf("30 22 0:26 / %s rw - cgroup2 cgroup2 rw\n", h.root)
	case LayoutHybrid:
		table = fmt.Sprintf("35 34 0:30 / %s rw - cgroup2 cgroup2 rw\n36 34 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", h.root)
	case LayoutLegacy:
		table = "36 34 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
	}
	if err := os.WriteFile(h.mountinfo, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// mkdir creates a cgroup directory and returns its id (inode number).
func (h *fakeHost) mkdir(t *testing.T, rel string) uint64 {
	t.Helper()
	p := filepath.Join(h.root, rel)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return inodeOf(t, p)
}

func inodeOf(t *testing.T, p string) uint64 {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info.Sys().(*syscall.Stat_t).Ino
}

// process writes /proc/PID/cgroup for a fake process.
func (h *fakeHost) process(t *testing.T, pid int, cgroup string) {
	t.Helper()
	d := filepath.Join(h.proc, fmt.Sprint(pid))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "cgroup"), []byte(cgroup), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (h *fakeHost) resolver(t *testing.T, cfg Config) (*Resolver, *prometheus.Registry) {
	t.Helper()
	cfg.Mountinfo, cfg.ProcRoot, cfg.NoHandles = h.mountinfo, h.proc, true
	cfg.Now = func() time.Time { return h.now }
	reg := prometheus.NewRegistry()
	r, err := NewResolver(cfg, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, reg
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "flowscope_exporter_identity_"+name {
			m := mf.GetMetric()[0]
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestResolverWalk(t *testing.T) {
	h := newFakeHost(t, LayoutUnified)
	podPath := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope"
	podID := h.mkdir(t, podPath)
	svcID := h.mkdir(t, "system.slice/nginx.service")
	rootID := inodeOf(t, h.root)
	r, reg := h.resolver(t, Config{})

	for _, tc := range []struct {
		id   uint64
		pid  uint32
		comm string
		want flow.Workload
	}{
		{podID, 0, "", podWorkload(podPath, uid, cid, RuntimeContainerd, "cri-containerd-"+cid+".scope")},
		{svcID, 1234, "nginx", flow.Workload{Kind: flow.KindUnit, Unit: "nginx.service", CgroupPath: "/system.slice/nginx.service", Pid: 1234, Comm: "nginx"}},
		{rootID, 7, "", flow.Workload{Kind: flow.KindHost, CgroupPath: "/", Pid: 7}},
		{podID, 0, "", podWorkload(podPath, uid, cid, RuntimeContainerd, "cri-containerd-"+cid+".scope")},
	} {
		if diff := cmp.Diff(tc.want, r.Workload(tc.id, tc.pid, tc.comm)); diff != "" {
			t.Errorf("Workload(%d) (-want +got):\n%s", tc.id, diff)
		}
	}
	for name, want := range map[string]float64{"lookups_total": 4, "cache_hits_total": 1, "cache_misses_total": 3, "walks_total": 1, "unresolved_total": 0, "cache_entries": 3} {
		if got := counter(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func TestResolverRewalkIsRateLimited(t *testing.T) {
	h := newFakeHost(t, LayoutUnified)
	h.mkdir(t, "system.slice")
	r, reg := h.resolver(t, Config{RewalkInterval: time.Second, NegativeTTL: time.Minute})
	if w := r.Workload(999_999_999, 0, ""); w.Kind != flow.KindUnknown {
		t.Fatalf("unknown id resolved to %+v", w)
	}
	// A cgroup created after the walk is not found until the interval has passed...
	id := h.mkdir(t, "system.slice/late.service")
	h.now = h.now.Add(500 * time.Millisecond)
	if w := r.Workload(id, 0, ""); w.Kind != flow.KindUnknown {
		t.Errorf("found %+v before the rewalk interval", w)
	}
	if got := counter(t, reg, "walks_rate_limited_total"); got != 1 {
		t.Errorf("walks_rate_limited_total = %v", got)
	}
	// ... and then found (a rate-limited miss is not cached).
	h.now = h.now.Add(600 * time.Millisecond)
	if w := r.Workload(id, 0, ""); w.Unit != "late.service" {
		t.Errorf("after the interval: %+v", w)
	}
	if got := counter(t, reg, "walks_total"); got != 2 {
		t.Errorf("walks_total = %v, want 2", got)
	}
}

func TestResolverNegativeEntriesExpire(t *testing.T) {
	h := newFakeHost(t, LayoutUnified)
	r, reg := h.resolver(t, Config{RewalkInterval: time.Second, NegativeTTL: 10 * time.Second})
	const gone = 424242424242
	for i := 0; i < 3; i++ {
		if w := r.Workload(gone, 0, ""); w.Kind != flow.KindUnknown {
			t.Fatalf("removed cgroup resolved to %+v", w)
		}
		h.now = h.now.Add(2 * time.Second) // past the rewalk interval, within the TTL
	}
	if got := counter(t, reg, "walks_total"); got != 1 {
		t.Errorf("walks_total = %v within the negative TTL, want 1", got)
	}
	h.now = h.now.Add(10 * time.Second)
	r.Workload(gone, 0, "")
	if got := counter(t, reg, "walks_total"); got != 2 {
		t.Errorf("walks_total = %v after the negative TTL, want 2", got)
	}
	if got := counter(t, reg, "unresolved_total"); got != 2 {
		t.Errorf("unresolved_total = %v, want 2", got)
	}
}

func TestResolverEvicts(t *testing.T) {
	h := newFakeHost(t, LayoutUnified)
	var ids []uint64
	for i := range 5 {
		ids = append(ids, h.mkdir(t, fmt.Sprintf("system.slice/s%d.service", i)))
	}
	r, reg := h.resolver(t, Config{CacheSize: 2})
	for _, id := range ids {
		r.Workload(id, 0, "")
	}
	if got := counter(t, reg, "evictions_total"); got != 3 {
		t.Errorf("evictions_total = %v, want 3", got)
	}
	if got := counter(t, reg, "cache_entries"); got != 2 {
		t.Errorf("cache_entries = %v, want 2", got)
	}
	// Evicted ids are still resolved (from the walk's index, without a new walk).
	if w := r.Workload(ids[0], 0, ""); w.Unit != "s0.service" {
		t.Errorf("evicted id: %+v", w)
	}
	if got := counter(t, reg, "walks_total"); got != 1 {
		t.Errorf("walks_total = %v, want 1", got)
	}
}

func TestResolverProcessFallback(t *testing.T) {
	const v1 = "9:name=systemd:/\n4:memory:/kubepods/burstable/pod" + uid + "/" + cid + "\n0::/\n"
	for _, tc := range []struct {
		layout Layout
		want   flow.WorkloadKind
	}{
		{LayoutHybrid, flow.KindPod},
		{LayoutLegacy, flow.KindPod},
		{LayoutUnified, flow.KindHost}, // on v2 hosts the socket's cgroup is authoritative
	} {
		t.Run(string(tc.layout), func(t *testing.T) {
			h := newFakeHost(t, tc.layout)
			h.process(t, 42, v1)
			r, reg := h.resolver(t, Config{})
			root := uint64(rootID)
			if tc.layout != LayoutLegacy {
				root = inodeOf(t, h.root)
			}
			w := r.Workload(root, 42, "app")
			if w.Kind != tc.want || w.Pid != 42 || w.Comm != "app" {
				t.Errorf("Workload(root, 42) = %+v, want kind %s", w, tc.want)
			}
			if tc.want == flow.KindPod && (w.PodUID != uid || w.ContainerID != cid) {
				t.Errorf("pod from the process: %+v", w)
			}
			if w := r.Workload(root, 43, ""); w.Kind != flow.KindHost {
				t.Errorf("a process that is gone: %+v, want host", w)
			}
			if w := r.Workload(root, 0, ""); w.Kind != flow.KindHost {
				t.Errorf("no pid: %+v, want host", w)
			}
			off, _ := h.resolver(t, Config{NoProcess: true})
			if w := off.Workload(root, 42, ""); w.Kind != flow.KindHost {
				t.Errorf("NoProcess: %+v, want host", w)
			}
			r.Workload(root, 42, "app") // cached by pid
			want := 0.0
			if tc.want == flow.KindPod {
				want = 2 // pid 42 once, pid 43 (gone, not cached) once
			}
			if got := counter(t, reg, "process_lookups_total"); got != want {
				t.Errorf("process_lookups_total = %v, want %v", got, want)
			}
		})
	}
}

func TestResolverLegacyUnknownID(t *testing.T) {
	h := newFakeHost(t, LayoutLegacy)
	r, _ := h.resolver(t, Config{})
	if w := r.Workload(77, 0, ""); w.Kind != flow.KindUnknown {
		t.Errorf("id 77 without a v2 mount: %+v", w)
	}
	if r.Layout().Layout != LayoutLegacy {
		t.Errorf("layout %q", r.Layout().Layout)
	}
}

func TestNewResolverBadInput(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, cfg := range map[string]Config{
		"negative size":   {CacheSize: -1},
		"negative ttl":    {NegativeTTL: -time.Second},
		"missing table":   {Mountinfo: "/nonexistent/mountinfo"},
		"malformed table": {Mountinfo: writeTemp(t, "garbage\n")},
	} {
		if _, err := NewResolver(cfg, nil, log); err == nil {
			t.Errorf("%s: NewResolver succeeded", name)
		}
	}
	// Registering twice on one registry is an error, not a panic.
	h := newFakeHost(t, LayoutUnified)
	reg := prometheus.NewRegistry()
	cfg := Config{Mountinfo: h.mountinfo, NoHandles: true}
	if _, err := NewResolver(cfg, reg, log); err != nil {
		t.Fatal(err)
	}
	if _, err := NewResolver(cfg, reg, log); err == nil {
		t.Error("second NewResolver on the same registry succeeded")
	}
}

func writeTemp(t *testing.T, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolverConcurrent(t *testing.T) {
	h := newFakeHost(t, LayoutUnified)
	var ids []uint64
	for i := range 50 {
		ids = append(ids, h.mkdir(t, fmt.Sprintf("system.slice/s%d.service", i)))
	}
	r, reg := h.resolver(t, Config{CacheSize: 16})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				id := ids[(i*7+g)%len(ids)]
				if w := r.Workload(id, 0, ""); w.Kind != flow.KindUnit {
					t.Errorf("id %d: %+v", id, w)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := counter(t, reg, "lookups_total"); got != 8000 {
		t.Errorf("lookups_total = %v", got)
	}
}

func TestCacheClock(t *testing.T) {
	c := newCache(2)
	now := time.Now
	c.put(1, flow.Workload{Unit: "a"}, time.Time{})
	c.put(2, flow.Workload{Unit: "b"}, time.Time{})
	c.get(1, now) // 1 is referenced, 2 is not
	if !c.put(3, flow.Workload{Unit: "c"}, time.Time{}) {
		t.Fatal("no eviction when full")
	}
	if _, ok := c.get(2, now); ok {
		t.Error("unreferenced key 2 survived")
	}
	if w, ok := c.get(1, now); !ok || w.Unit != "a" {
		t.Error("referenced key 1 evicted")
	}
	// Both referenced now: the hand clears both bits and takes the first slot (key 1).
	c.get(3, now)
	c.put(4, flow.Workload{}, time.Time{})
	if _, ok := c.get(1, now); ok {
		t.Error("key 1 survived a full sweep")
	}
	if _, ok := c.get(3, now); !ok {
		t.Error("key 3 evicted")
	}
	c.put(3, flow.Workload{}, time.Now().Add(-time.Second))
	if _, ok := c.get(3, now); ok {
		t.Error("expired entry returned")
	}
}

func BenchmarkWorkloadHit(b *testing.B) {
	r, id := benchResolver(b)
	b.ResetTimer()
	for b.Loop() {
		r.Workload(id, 1234, "nginx")
	}
}

func BenchmarkWorkloadHitParallel(b *testing.B) {
	r, id := benchResolver(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Workload(id, 1234, "nginx")
		}
	})
}

func benchResolver(b *testing.B) (*Resolver, uint64) {
	dir := b.TempDir()
	p := filepath.Join(dir, "kubepods/burstable/pod"+uid+"/"+cid)
	if err := os.MkdirAll(p, 0o755); err != nil {
		b.Fatal(err)
	}
	info, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	mi := filepath.Join(dir, "mountinfo")
	if err := os.WriteFile(mi, []byte("30 22 0:26 / "+dir+" rw - cgroup2 cgroup2 rw\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	r, err := NewResolver(Config{Mountinfo: mi, NoHandles: true}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	id := info.Sys().(*syscall.Stat_t).Ino
	if w := r.Workload(id, 0, ""); w.Kind != flow.KindPod {
		b.Fatalf("setup: %+v", w)
	}
	return r, id
}
