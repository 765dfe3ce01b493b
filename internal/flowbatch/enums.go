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

// Switches instead of map lookups on the per-record path: a string hash costs more than a
// few comparisons.

func directionPB(d flow.Direction) flowv1.Direction {
	switch d {
	case flow.Client:
		return flowv1.Direction_DIRECTION_CLIENT
	case flow.Server:
		return flowv1.Direction_DIRECTION_SERVER
	}
	return flowv1.Direction_DIRECTION_UNKNOWN // "unknown", and anything unset, which the collector would refuse
}

func outcomePB(o flow.Outcome) flowv1.Outcome {
	switch o {
	case flow.OK:
		return flowv1.Outcome_OUTCOME_OK
	case flow.Open:
		return flowv1.Outcome_OUTCOME_OPEN
	case flow.Reset:
		return flowv1.Outcome_OUTCOME_RESET
	case flow.Refused:
		return flowv1.Outcome_OUTCOME_REFUSED
	case flow.Timeout:
		return flowv1.Outcome_OUTCOME_TIMEOUT
	case flow.Aborted:
		return flowv1.Outcome_OUTCOME_ABORTED
	}
	return flowv1.Outcome_OUTCOME_UNSPECIFIED
}

// statePB returns the TCPState of a state name, and false for names it does not know.
func statePB(s string) (flowv1.TCPState, bool) {
	switch s {
	case "CLOSE":
		return flowv1.TCPState_TCP_STATE_CLOSE, true
	case "FIN_WAIT2":
		return flowv1.TCPState_TCP_STATE_FIN_WAIT2, true
	case "TIME_WAIT":
		return flowv1.TCPState_TCP_STATE_TIME_WAIT, true
	case "ESTABLISHED":
		return flowv1.TCPState_TCP_STATE_ESTABLISHED, true
	}
	v, ok := stateToPB[s]
	return v, ok
}
