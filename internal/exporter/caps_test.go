package exporter

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestMissingCapabilities(t *testing.T) {
	all := uint64(1)<<41 - 1
	if got := missing(all); len(got) != 0 {
		t.Errorf("all capabilities: missing %v", got)
	}
	got := missing(all &^ (1 << unix.CAP_BPF) &^ (1 << unix.CAP_SYS_PTRACE))
	if d := cmp.Diff([]string{"CAP_BPF", "CAP_SYS_PTRACE"}, got); d != "" {
		t.Errorf("(-want +got) %s", d)
	}
	if got := missing(0); len(got) != len(requiredCaps) {
		t.Errorf("no capabilities: missing %v", got)
	}
}
