package adapt

import (
	"testing"
	"testing/fstest"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

const meminfo = "MemTotal:        8000000 kB\nMemFree: 1 kB\n"

func TestDetect(t *testing.T) {
	cases := []struct {
		name      string
		files     map[string]string
		cores     float64
		mem       uint64
		cgVersion int
	}{
		{"no cgroups", map[string]string{"proc/meminfo": meminfo}, 4, 8000000 * 1024, 0},
		{"v2 with limits on the parent", map[string]string{
			"proc/meminfo":                               meminfo,
			"proc/self/cgroup":                           "0::/kubepods/pod1/ctr\n",
			"proc/self/mountinfo":                        "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			"sys/fs/cgroup/kubepods/pod1/ctr/cpu.max":    "max 100000\n",
			"sys/fs/cgroup/kubepods/pod1/cpu.max":        "50000 100000\n",
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "268435456\n",
		}, 0.5, 256 << 20, 2},
		{"v1", map[string]string{
			"proc/meminfo":     meminfo,
			"proc/self/cgroup": "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/docker/abc\n",
			"proc/self/mountinfo": "40 1 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n" +
				"41 1 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
			"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us":  "150000\n",
			"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes":  "9223372036854771712\n",
		}, 1.5, 8000000 * 1024, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := fstest.MapFS{}
			for p, c := range tc.files {
				root[p] = &fstest.MapFile{Data: []byte(c)}
			}
			in, err := Detect(root, 4)
			if err != nil {
				t.Fatal(err)
			}
			if in.Cores != tc.cores || in.MemoryBytes != tc.mem || in.CgroupVersion != tc.cgVersion {
				t.Errorf("got %+v, want cores %v mem %d v%d", in, tc.cores, tc.mem, tc.cgVersion)
			}
		})
	}
}

func TestPlanScales(t *testing.T) {
	small := PlanFor(Instance{NodeCores: 1, Cores: 1, MemoryBytes: 512 << 20}, 0)
	big := PlanFor(Instance{NodeCores: 64, Cores: 64, MemoryBytes: 256 << 30}, 0)
	if small.BatchSize >= big.BatchSize || small.BufferBytes >= big.BufferBytes || small.FlowEntries > big.FlowEntries {
		t.Errorf("small %+v not smaller than big %+v", small, big)
	}
	if big.CPUBudget != 0.64 || big.BufferBytes != 256<<20 || small.BufferBytes != 8<<20 {
		t.Errorf("budget/buffer: small %+v big %+v", small, big)
	}
}

func TestBudgetDegradesAndRecovers(t *testing.T) {
	now := time.Unix(1000, 0)
	var cpu time.Duration
	b := NewBudget(0.02, time.Second, func() time.Duration { return cpu }, func() time.Time { return now })
	step := func(used time.Duration) Level {
		now = now.Add(time.Second)
		cpu += used
		return b.Tick()
	}
	if l := step(10 * time.Millisecond); l != Full {
		t.Fatalf("1%% of a core: %v", l)
	}
	if l := step(50 * time.Millisecond); l != Folding {
		t.Fatalf("5%% of a core over a 2%% budget: %v", l)
	}
	if l := step(12 * time.Millisecond); l != Folding {
		t.Fatalf("recovering too early: %v", l)
	}
	step(5 * time.Millisecond)
	if l := step(5 * time.Millisecond); l != Full {
		t.Fatalf("calm for a window: %v", l)
	}
}

func TestFold(t *testing.T) {
	now := time.Unix(2000, 0)
	recs := flowbatch.SampleRecords(100, now)
	recs[0].Interim = true
	recs[1].Start = recs[1].End.Add(-time.Minute)
	for i := range recs {
		recs[i].RemoteAddr = recs[0].RemoteAddr
		recs[i].ResetsSent = 1
	}
	kept, aggs := Fold(recs, time.Second)
	if len(kept) != 2 {
		t.Fatalf("kept %d, want the interim and the long one", len(kept))
	}
	var flows, bytes, resets uint64
	for _, a := range aggs {
		flows += a.Flows
		bytes += a.BytesSent
		resets += a.ResetsSent
		if a.Outcomes[flow.OK] != a.Flows {
			t.Errorf("outcomes %v for %d flows", a.Outcomes, a.Flows)
		}
	}
	if flows != 98 || bytes != 98*1024 || resets != 98 || len(aggs) != 8 {
		t.Errorf("aggregates: %d of %d flows, %d bytes, %d resets", len(aggs), flows, bytes, resets)
	}
}
