package flowbatch

import (
	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/flow"
)

var (
	directionToPB = map[flow.Direction]flowv1.Direction{
		flow.Client: flowv1.Direction_DIRECTION_CLIENT, flow.Server: flowv1.Direction_DIRECTION_SERVER,
		flow.DirectionUnknown: flowv1.Direction_DIRECTION_UNKNOWN,
	}
	outcomeToPB = map[flow.Outcome]flowv1.Outcome{
		flow.Open: flowv1.Outcome_OUTCOME_OPEN, flow.OK: flowv1.Outcome_OUTCOME_OK,
		flow.Refused: flowv1.Outcome_OUTCOME_REFUSED, flow.Timeout: flowv1.Outcome_OUTCOME_TIMEOUT,
		flow.Reset: flowv1.Outcome_OUTCOME_RESET, flow.Aborted: flowv1.Outcome_OUTCOME_ABORTED,
	}
	kindToPB = map[flow.WorkloadKind]flowv1.WorkloadKind{
		flow.KindPod: flowv1.WorkloadKind_WORKLOAD_KIND_POD, flow.KindContainer: flowv1.WorkloadKind_WORKLOAD_KIND_CONTAINER,
		flow.KindUnit: flowv1.WorkloadKind_WORKLOAD_KIND_SYSTEMD, flow.KindCgroup: flowv1.WorkloadKind_WORKLOAD_KIND_CGROUP,
		flow.KindHost: flowv1.WorkloadKind_WORKLOAD_KIND_HOST, flow.KindUnknown: flowv1.WorkloadKind_WORKLOAD_KIND_UNKNOWN,
	}
	stateToPB = map[string]flowv1.TCPState{}

	directionFromPB = invert(directionToPB)
	outcomeFromPB   = invert(outcomeToPB)
	kindFromPB      = invert(kindToPB)
	stateFromPB     = map[flowv1.TCPState]string{}
)

func init() {
	for n, v := range flowv1.TCPState_value {
		if v == 0 {
			continue
		}
		name := n[len("TCP_STATE_"):]
		stateToPB[name] = flowv1.TCPState(v)
		stateFromPB[flowv1.TCPState(v)] = name
	}
}

func invert[K, V comparable](m map[K]V) map[V]K {
	r := make(map[V]K, len(m))
	for k, v := range m {
		r[v] = k
	}
	return r
}
