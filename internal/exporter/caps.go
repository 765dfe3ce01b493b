package exporter

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// requiredCaps are what the exporter uses: loading tracing programs (BPF, PERFMON), attaching
// cgroup hooks (NET_ADMIN), entering other network namespaces (SYS_ADMIN), reading other
// processes' namespaces (SYS_PTRACE) and resolving cgroup ids by handle (DAC_READ_SEARCH).
var requiredCaps = []struct {
	name string
	bit  uint
}{
	{"CAP_BPF", unix.CAP_BPF}, {"CAP_PERFMON", unix.CAP_PERFMON}, {"CAP_NET_ADMIN", unix.CAP_NET_ADMIN},
	{"CAP_SYS_ADMIN", unix.CAP_SYS_ADMIN}, {"CAP_SYS_PTRACE", unix.CAP_SYS_PTRACE},
	{"CAP_DAC_READ_SEARCH", unix.CAP_DAC_READ_SEARCH},
}

// MissingCapabilities returns the capabilities the exporter needs that this process does not
// have in its effective set.
func MissingCapabilities() ([]string, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil, fmt.Errorf("reading capabilities: %w", err)
	}
	return missing(uint64(data[1].Effective)<<32 | uint64(data[0].Effective)), nil
}

func missing(effective uint64) []string {
	var out []string
	for _, c := range requiredCaps {
		if effective&(1<<c.bit) == 0 {
			out = append(out, c.name)
		}
	}
	return out
}
