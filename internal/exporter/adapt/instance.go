// Package adapt sizes the exporter for the instance it runs on and keeps it inside a CPU
// budget: it reads cores, memory and cgroup (v1 or v2) CPU and memory limits, derives batch
// size, flush interval, buffer memory and BPF map sizes from them, and measures the process's
// own CPU use to tell the exporter when to degrade granularity.
package adapt

import (
	"bufio"
	"fmt"
	"io/fs"
	"math"
	"path"
	"strconv"
	"strings"
)

// Instance is what the exporter may use of the machine.
type Instance struct {
	NodeCores     float64 // online CPUs of the node
	Cores         float64 // CPUs this process may use: the node's, or less under a cgroup quota
	MemoryBytes   uint64  // the node's memory, or less under a cgroup limit
	NodeMemory    uint64
	CgroupVersion int // 1, 2 or 0 when no cgroup was found
}

// Constrained says the instance is small: under 2 usable cores or 1 GiB.
func (i Instance) Constrained() bool { return i.Cores < 2 || i.MemoryBytes < 1<<30 }

// Detect reads the instance from a root file system (os.DirFS("/") in production, a fixture
// in tests); onlineCPUs is runtime.NumCPU() in production.
func Detect(root fs.FS, onlineCPUs int) (Instance, error) {
	in := Instance{NodeCores: float64(onlineCPUs), Cores: float64(onlineCPUs)}
	mem, err := memTotal(root)
	if err != nil {
		return in, err
	}
	in.NodeMemory, in.MemoryBytes = mem, mem
	v, dirs, err := ownCgroups(root)
	if err != nil || v == 0 {
		return in, err // no cgroup information: the node's figures stand
	}
	in.CgroupVersion = v
	if q, ok := cpuLimit(root, v, dirs); ok && q < in.Cores {
		in.Cores = q
	}
	if m, ok := memLimit(root, v, dirs); ok && m < in.MemoryBytes {
		in.MemoryBytes = m
	}
	return in, nil
}

func memTotal(root fs.FS) (uint64, error) {
	f, err := root.Open("proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("reading meminfo: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing MemTotal: %w", err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no MemTotal in /proc/meminfo")
}

// cgroupDirs maps a controller ("cpu", "memory", or "" for v2) to the directories, under the
// root file system, holding this process's cgroup files: its own and each ancestor's up to
// the mount, innermost first (a limit anywhere up the tree applies).
type cgroupDirs map[string][]string

// ownCgroups finds the process's cgroups from /proc/self/cgroup and /proc/self/mountinfo.
func ownCgroups(root fs.FS) (int, cgroupDirs, error) {
	cg, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return 0, nil, nil
	}
	mi, err := fs.ReadFile(root, "proc/self/mountinfo")
	if err != nil {
		return 0, nil, nil
	}
	mounts := parseMounts(string(mi))
	dirs := cgroupDirs{}
	version := 0
	for _, line := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			if ctrl != "" && ctrl != "cpu" && ctrl != "memory" {
				continue
			}
			m, ok := mounts[ctrl]
			if !ok {
				continue
			}
			if ctrl == "" {
				version = max(version, 2)
			} else {
				version = 1
			}
			dirs[ctrl] = ancestors(m, parts[2])
		}
	}
	if version == 1 && len(dirs["cpu"]) == 0 && len(dirs["memory"]) == 0 {
		version = 2
	}
	return version, dirs, nil
}

type mount struct{ root, point string }

// parseMounts returns cgroup mounts by controller ("" for the v2 unified hierarchy).
func parseMounts(mi string) map[string]mount {
	out := map[string]mount{}
	for _, line := range strings.Split(mi, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, pf := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(pf) < 3 {
			continue
		}
		m := mount{root: f[3], point: f[4]}
		switch pf[0] {
		case "cgroup2":
			out[""] = m
		case "cgroup":
			for _, opt := range strings.Split(pf[2], ",") {
				if opt == "cpu" || opt == "memory" {
					out[opt] = m
				}
			}
		}
	}
	return out
}

func ancestors(m mount, cgPath string) []string {
	rel := strings.TrimPrefix(cgPath, m.root)
	if m.root == "/" {
		rel = cgPath
	}
	var out []string
	for p := path.Join("/", rel); ; p = path.Dir(p) {
		out = append(out, strings.TrimPrefix(path.Join(m.point, p), "/"))
		if p == "/" {
			return out
		}
	}
}

func cpuLimit(root fs.FS, v int, dirs cgroupDirs) (float64, bool) {
	best, found := math.Inf(1), false
	if v == 2 {
		for _, d := range dirs[""] {
			b, err := fs.ReadFile(root, path.Join(d, "cpu.max"))
			if err != nil {
				continue
			}
			f := strings.Fields(string(b))
			if len(f) == 2 && f[0] != "max" {
				q, err1 := strconv.ParseFloat(f[0], 64)
				p, err2 := strconv.ParseFloat(f[1], 64)
				if err1 == nil && err2 == nil && p > 0 && q/p < best {
					best, found = q/p, true
				}
			}
		}
		return best, found
	}
	for _, d := range dirs["cpu"] {
		q, err1 := readInt(root, path.Join(d, "cpu.cfs_quota_us"))
		p, err2 := readInt(root, path.Join(d, "cpu.cfs_period_us"))
		if err1 == nil && err2 == nil && q > 0 && p > 0 && float64(q)/float64(p) < best {
			best, found = float64(q)/float64(p), true
		}
	}
	return best, found
}

func memLimit(root fs.FS, v int, dirs cgroupDirs) (uint64, bool) {
	name, key := "memory.max", ""
	if v == 1 {
		name, key = "memory.limit_in_bytes", "memory"
	}
	best, found := uint64(math.MaxUint64), false
	for _, d := range dirs[key] {
		n, err := readInt(root, path.Join(d, name))
		if err == nil && n > 0 && n < 1<<62 && uint64(n) < best { // v1 "no limit" is a huge number
			best, found = uint64(n), true
		}
	}
	return best, found
}

func readInt(root fs.FS, p string) (int64, error) {
	b, err := fs.ReadFile(root, p)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, fmt.Errorf("no limit")
	}
	return strconv.ParseInt(s, 10, 64)
}
