package flow

import (
	"net/netip"
	"time"
)

// EndpointKind classifies what the collector attributed an address to.
type EndpointKind string

// Endpoint kinds. Unattributed endpoints carry a Reason instead of a name.
const (
	EndpointPod          EndpointKind = "pod"
	EndpointService      EndpointKind = "service"
	EndpointNode         EndpointKind = "node"    // a node's own address (host network)
	EndpointHost         EndpointKind = "host"    // a non-Kubernetes host workload (systemd unit, container, process)
	EndpointNetwork      EndpointKind = "network" // a named CIDR (cloud service, on-premises network, "internet")
	EndpointUnattributed EndpointKind = "unattributed"
)

// Reason says why an endpoint could not be attributed. An unattributed endpoint is acceptable
// and counted; a wrong name is a defect.
type Reason string

// Reasons for an unattributed endpoint.
const (
	ReasonNoOwner  Reason = "no-owner" // no source ever claimed the address
	ReasonGap      Reason = "gap"      // the address had owners, but none covering the flow's start
	ReasonConflict Reason = "conflict" // sources disagree for that moment
	ReasonStale    Reason = "stale"    // the only covering data is past its horizon (e.g. the API server went away)
	ReasonExternal Reason = "external" // outside the cluster and not in any named network
)

// Endpoint is one end of a connection as the collector names it.
type Endpoint struct {
	Addr netip.Addr   `json:"addr"`
	Port uint16       `json:"port"`
	Kind EndpointKind `json:"kind"`

	Cluster        string            `json:"cluster,omitempty"`
	Namespace      string            `json:"namespace,omitempty"`
	Workload       string            `json:"workload,omitempty"`      // owning workload name (Deployment, StatefulSet, ...), the pod name for bare pods, the unit/container/process for hosts
	WorkloadKind   string            `json:"workload_kind,omitempty"` // Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod, Service, Node, systemd, container, process
	Pod            string            `json:"pod,omitempty"`
	PodUID         string            `json:"pod_uid,omitempty"`
	Node           string            `json:"node,omitempty"`
	Zone           string            `json:"zone,omitempty"` // the node's topology.kubernetes.io/zone, for pods, nodes and host workloads
	ServiceAccount string            `json:"service_account,omitempty"`
	Service        string            `json:"service,omitempty"` // Service name when Kind is service
	Network        string            `json:"network,omitempty"` // named network when Kind is network
	Labels         map[string]string `json:"labels,omitempty"`

	Reason Reason `json:"reason,omitempty"` // set when Kind is unattributed
}

// Name is the display name of the endpoint's workload: "namespace/workload", the network or
// service name, or "unattributed:<reason>".
func (e Endpoint) Name() string {
	switch e.Kind {
	case EndpointUnattributed:
		return "unattributed:" + string(e.Reason)
	case EndpointNetwork:
		return "network/" + e.Network
	case EndpointService:
		return e.Namespace + "/svc/" + e.Service
	case EndpointNode:
		return "node/" + e.Node
	}
	if e.Namespace != "" {
		return e.Namespace + "/" + e.Workload
	}
	return e.Workload
}

// Conn is one attributed TCP connection (or one interval of it), oriented client → server.
// It is what the collector's attribution produces and what the store aggregates. Counters are
// deltas for the interval, like Record's.
type Conn struct {
	ConnKey  string    `json:"conn_key"` // stable per connection: exporter id + conn_id of the side that reported it (the client's when joined)
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Interim  bool      `json:"interim"`
	Observed string    `json:"observed"` // "client", "server" or "both" (joined)

	Client Endpoint  `json:"client"`
	Server Endpoint  `json:"server"`
	VIP    *Endpoint `json:"vip,omitempty"` // the Service address the client dialled, when it was translated to Server

	BytesClientToServer uint64  `json:"bytes_client_to_server"`
	BytesServerToClient uint64  `json:"bytes_server_to_client"`
	Retransmits         uint64  `json:"retransmits"`
	BytesRetransmitted  uint64  `json:"bytes_retransmitted"`
	ClientSrttUs        uint32  `json:"client_srtt_us,omitempty"`
	ServerSrttUs        uint32  `json:"server_srtt_us,omitempty"`
	Resets              uint32  `json:"resets"`
	Outcome             Outcome `json:"outcome"`

	JoinDisagreement bool `json:"join_disagreement,omitempty"` // both sides observed, their attributions differ
}
