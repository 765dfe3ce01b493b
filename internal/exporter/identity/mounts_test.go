package identity

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func loadMounts(t *testing.T, name string) CgroupMounts {
	t.Helper()
	return FindCgroupMounts(parseFixture(t, name))
}

func parseFixture(t *testing.T, name string) []Mount {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "mountinfo", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mounts, err := ParseMountinfo(f)
	if err != nil {
		t.Fatal(err)
	}
	return mounts
}

func TestFindCgroupMounts(t *testing.T) {
	for _, tc := range []struct {
		file            string
		layout          Layout
		v2Point, v2Root string
		v1              []string
	}{
		{"unified.txt", LayoutUnified, "/sys/fs/cgroup", "/", nil},
		{"hybrid-systemd.txt", LayoutHybrid, "/sys/fs/cgroup/unified", "/", []string{"cpu", "cpuacct", "cpuset", "memory", "name=systemd", "net_cls", "net_prio", "pids"}},
		{"hybrid-plain.txt", LayoutHybrid, "/sys/fs/cgroup/unified", "/", []string{"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "name=systemd", "pids"}},
		{"legacy.txt", LayoutLegacy, "", "", []string{"cpu", "cpuacct", "memory", "name=systemd", "net_cls", "net_prio", "pids"}},
		// Inside a container without a cgroup namespace the own mount's root is the container's
		// cgroup; the host's hierarchy, bind-mounted with root "/", is preferred.
		{"container.txt", LayoutUnified, "/host/sys/fs/cgroup", "/", nil},
		{"escaped.txt", LayoutUnified, "/mnt/my cgroups", "/", nil},
		{"none.txt", LayoutNone, "", "", nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cm := loadMounts(t, tc.file)
			if cm.Layout != tc.layout {
				t.Errorf("layout %q, want %q", cm.Layout, tc.layout)
			}
			var point, root string
			if cm.V2 != nil {
				point, root = cm.V2.MountPoint, cm.V2.Root
			}
			if point != tc.v2Point || root != tc.v2Root {
				t.Errorf("v2 mount %q root %q, want %q root %q", point, root, tc.v2Point, tc.v2Root)
			}
			if diff := cmp.Diff(tc.v1, slices.Sorted(maps.Keys(cm.V1))); diff != "" {
				t.Errorf("v1 controllers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContainerMountRoot(t *testing.T) {
	mounts := parseFixture(t, "container.txt")
	// Only the container's own mount: paths outside its root cannot be reached.
	var own []Mount
	for _, m := range mounts {
		if m.MountPoint == "/sys/fs/cgroup" {
			own = append(own, m)
		}
	}
	cm := FindCgroupMounts(own)
	root := cm.V2.Root
	if !strings.HasPrefix(root, "/kubepods.slice/") {
		t.Fatalf("root %q", root)
	}
	for _, tc := range []struct {
		path, dir string
		ok        bool
	}{
		{root, "/sys/fs/cgroup", true},
		{root + "/sub", "/sys/fs/cgroup/sub", true},
		{"/system.slice/x.service", "", false},
		{root + "x", "", false},
	} {
		dir, ok := cm.V2Dir(tc.path)
		if dir != tc.dir || ok != tc.ok {
			t.Errorf("V2Dir(%q) = %q, %v; want %q, %v", tc.path, dir, ok, tc.dir, tc.ok)
		}
		if ok {
			back, ok := cm.V2Path(dir)
			if !ok || back != tc.path {
				t.Errorf("V2Path(%q) = %q, %v; want %q", dir, back, ok, tc.path)
			}
		}
	}
}

func TestParseMountinfoErrors(t *testing.T) {
	for _, in := range []string{
		"garbage",
		"1 2 0:1 / /x rw",                      // no separator
		"a b 0:1 / /x rw - cgroup2 cgroup2 rw", // ids
		"1 2 0:1 / /x rw - cgroup2",            // no source
	} {
		if _, err := ParseMountinfo(strings.NewReader(in)); err == nil {
			t.Errorf("ParseMountinfo(%q) succeeded", in)
		}
	}
}

func TestWorkloadPath(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"unified", "0::/system.slice/nginx.service\n", "/system.slice/nginx.service"},
		{"hybrid, v2 root, systemd named", "12:pids:/system.slice/a.service\n1:name=systemd:/system.slice/a.service\n0::/\n", "/system.slice/a.service"},
		{"hybrid, v2 set", "4:memory:/x\n0::/kubepods/pod1/c\n", "/kubepods/pod1/c"},
		{"legacy, memory only", "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/8a7b\n0::/\n", "/process_api/8a7b"},
		{"legacy, prefers pids over memory", "4:memory:/m\n8:pids:/p\n", "/p"},
		{"legacy, unknown controller", "3:net_cls,net_prio:/n\n", "/n"},
		{"all root", "0::/\n4:memory:/\n", "/"},
		{"garbage", "junk\n:x\n1:memory\n", "/"},
	} {
		if got := WorkloadPath(ParseProcCgroup(tc.in)); got != tc.want {
			t.Errorf("%s: WorkloadPath = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestProcReader(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "42"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"cgroup": "1:name=systemd:/system.slice/x.service\n0::/\n", "comm": "nginx\n"} {
		if err := os.WriteFile(filepath.Join(dir, "42", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := ProcReader{Root: dir}
	if got, err := p.CgroupPath(42); err != nil || got != "/system.slice/x.service" {
		t.Errorf("CgroupPath = %q, %v", got, err)
	}
	if got, err := p.Comm(42); err != nil || got != "nginx" {
		t.Errorf("Comm = %q, %v", got, err)
	}
	if _, err := p.Comm(43); err == nil {
		t.Error("Comm of a missing process succeeded")
	}
}
