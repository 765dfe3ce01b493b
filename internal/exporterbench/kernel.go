package exporterbench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
)

// exporterPrograms and exporterMaps are the names (truncated by the kernel to 15 bytes) of the
// objects an exporter loads.
var (
	exporterPrograms = map[string]bool{"state_btf": true, "state_raw": true, "state_tp": true, "retransmit_btf": true,
		"send_reset_btf": true, "receive_reset_b": true, "connect4": true, "connect6": true, "iter_tcp": true}
	exporterMaps = map[string]bool{"events": true, "slots": true, "counters": true}
)

// maxIDs returns the highest program and map ids in use, so that objects loaded afterwards
// (the exporter's) can be told apart from older ones.
func maxIDs() (ebpf.ProgramID, ebpf.MapID) {
	var p ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(p)
		if err != nil {
			break
		}
		p = next
	}
	var m ebpf.MapID
	for {
		next, err := ebpf.MapGetNextID(m)
		if err != nil {
			break
		}
		m = next
	}
	return p, m
}

// kernelObjects are the exporter's programs and maps, found by name among those loaded after
// the given ids.
type kernelObjects struct {
	progs []*ebpf.Program
	names []string
	maps  []*ebpf.Map
}

func findObjects(afterProg ebpf.ProgramID, afterMap ebpf.MapID) (*kernelObjects, error) {
	k := &kernelObjects{}
	for id := afterProg; ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			break
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err := p.Info()
		if err != nil || !exporterPrograms[info.Name] {
			p.Close()
			continue
		}
		k.progs = append(k.progs, p)
		k.names = append(k.names, info.Name)
	}
	for id := afterMap; ; {
		next, err := ebpf.MapGetNextID(id)
		if err != nil {
			break
		}
		id = next
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			continue
		}
		info, err := m.Info()
		if err != nil || !exporterMaps[info.Name] {
			m.Close()
			continue
		}
		k.maps = append(k.maps, m)
	}
	if len(k.progs) == 0 {
		return nil, errors.New("the exporter's BPF programs were not found")
	}
	return k, nil
}

// perProgram returns each program's run time so far, by name.
func (k *kernelObjects) perProgram() map[string]uint64 {
	out := map[string]uint64{}
	for i, p := range k.progs {
		if st, err := p.Stats(); err == nil {
			out[k.names[i]] += uint64(st.Runtime)
		}
	}
	return out
}

// runtime sums the run time and run count of the programs.
func (k *kernelObjects) runtime() (ns, runs, misses uint64, err error) {
	for _, p := range k.progs {
		st, err := p.Stats()
		if err != nil {
			return 0, 0, 0, fmt.Errorf("reading program stats: %w", err)
		}
		ns += uint64(st.Runtime)
		runs += st.RunCount
		misses += st.RecursionMisses
	}
	return ns, runs, misses, nil
}

// mapBytes sums the kernel memory the maps hold.
func (k *kernelObjects) mapBytes() uint64 {
	var total uint64
	for _, m := range k.maps {
		if info, err := m.Info(); err == nil {
			if v, ok := info.Memlock(); ok {
				total += v
			}
		}
	}
	return total
}

func (k *kernelObjects) Close() {
	for _, p := range k.progs {
		p.Close()
	}
	for _, m := range k.maps {
		m.Close()
	}
}

// procCPU returns a process's CPU time in nanoseconds (the scheduler's accounting of every
// thread, /proc/PID/task/*/schedstat: ns precision, unlike the tick-based utime/stime) and its
// peak RSS in bytes.
func procCPU(pid int) (cpuNs, peakRSS uint64, err error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			v, _ := strconv.ParseUint(f[0], 10, 64)
			cpuNs += v
		}
	}
	return cpuNs, statusKB(pid, "VmHWM") * 1024, nil
}

// statusKB reads one "Name: N kB" field of /proc/PID/status (0 if absent).
func statusKB(pid int, field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
