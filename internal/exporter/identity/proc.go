package identity

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// ProcCgroup is one line of /proc/PID/cgroup: "HIERARCHY:CONTROLLERS:PATH". The cgroup v2 line
// is "0::PATH" (no controllers).
type ProcCgroup struct {
	Hierarchy   int
	Controllers []string // v1 controllers, "name=systemd" for named hierarchies; nil for v2
	Path        string
}

// ParseProcCgroup parses the contents of /proc/PID/cgroup, skipping malformed lines.
func ParseProcCgroup(data string) []ProcCgroup {
	var out []ProcCgroup
	for _, line := range strings.Split(data, "\n") {
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		ctrls, p, ok := strings.Cut(rest, ":")
		h, err := strconv.Atoi(id)
		if !ok || err != nil || !strings.HasPrefix(p, "/") {
			continue
		}
		pc := ProcCgroup{Hierarchy: h, Path: p}
		if ctrls != "" {
			pc.Controllers = strings.Split(ctrls, ",")
		}
		out = append(out, pc)
	}
	return out
}

// v1Preference orders v1 hierarchies by how reliably they name a workload: systemd and the
// container runtimes place a process in all of them, but some hosts mount only a few.
var v1Preference = []string{"name=systemd", "pids", "memory", "cpu", "cpuacct", "cpuset", "blkio", "devices", "freezer"}

// WorkloadPath picks, from a process's cgroup lines, the path that best names its workload:
// the v2 path when it is not the root, else the first non-root v1 path in the order of
// v1Preference (then any other v1 hierarchy), else "/".
func WorkloadPath(lines []ProcCgroup) string {
	for _, l := range lines {
		if l.Hierarchy == 0 && len(l.Controllers) == 0 && l.Path != "/" {
			return l.Path
		}
	}
	best, bestRank := "/", len(v1Preference)+1
	for _, l := range lines {
		if l.Path == "/" || len(l.Controllers) == 0 {
			continue
		}
		rank := len(v1Preference)
		for _, c := range l.Controllers {
			if i := slices.Index(v1Preference, c); i >= 0 && i < rank {
				rank = i
			}
		}
		if rank < bestRank {
			best, bestRank = l.Path, rank
		}
	}
	return best
}

// ProcReader reads process information from a proc file system.
type ProcReader struct {
	Root string // mount point of procfs, normally /proc
}

// CgroupPath returns the workload cgroup path of process pid (see WorkloadPath).
func (p ProcReader) CgroupPath(pid uint32) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("%s/%d/cgroup", p.Root, pid))
	if err != nil {
		return "", fmt.Errorf("reading cgroups of process %d: %w", pid, err)
	}
	return WorkloadPath(ParseProcCgroup(string(data))), nil
}

// Comm returns the command name of process pid (/proc/PID/comm).
func (p ProcReader) Comm(pid uint32) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("%s/%d/comm", p.Root, pid))
	if err != nil {
		return "", fmt.Errorf("reading command name of process %d: %w", pid, err)
	}
	return strings.TrimSuffix(string(data), "\n"), nil
}
