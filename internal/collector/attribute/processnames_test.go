package attribute

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowscope/flowscope/internal/flow"
)

// TestProcessNames: with Config.ProcessNames, a local end that is neither a pod, a container
// nor a unit is named by its process when the record names one; without, as before.
func TestProcessNames(t *testing.T) {
	tests := []struct {
		name         string
		processNames bool
		w            flow.Workload
		want         string // the client's name
	}{
		{"root cgroup", true, flow.Workload{Kind: flow.KindHost, Comm: "curl"}, "curl"},
		{"other cgroup", true, flow.Workload{Kind: flow.KindCgroup, CgroupPath: "/session-4", Comm: "curl"}, "curl"},
		{"root cgroup, process unknown", true, flow.Workload{Kind: flow.KindHost}, "node/n1"},
		{"systemd unit", true, flow.Workload{Kind: flow.KindUnit, Unit: "cron.service", Comm: "curl"}, "cron.service"},
		{"container", true, flow.Workload{Kind: flow.KindContainer, ContainerID: "abc", Comm: "curl"}, "abc"},
		{"off: root cgroup is the node", false, flow.Workload{Kind: flow.KindHost, Comm: "curl"}, "node/n1"},
		{"off: other cgroup by path", false, flow.Workload{Kind: flow.KindCgroup, CgroupPath: "/session-4", Comm: "curl"}, "/session-4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{ProcessNames: tt.processNames, JoinWait: 1})
			in := rec(flow.Client, cart, 10, 11)
			in.Record.Workload = tt.w
			h.add(in)
			h.advance(80)
			if len(h.out) != 1 {
				t.Fatalf("conns: %v", names(h.out))
			}
			got := h.out[0].Client
			if diff := cmp.Diff(tt.want, got.Name()); diff != "" {
				t.Errorf("client name (-want +got):\n%s", diff)
			}
			if tt.want == "curl" && got.WorkloadKind != "process" {
				t.Errorf("workload kind %q, want process", got.WorkloadKind)
			}
		})
	}
}
