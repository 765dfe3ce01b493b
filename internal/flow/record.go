// Package flow holds the domain model shared by the exporter and the collector: one TCP flow
// record per connection and side, and the identity of the local workload that held the socket.
//
// The JSON form of Record is a stable, documented interface (docs/flow-record.md): field names
// are a contract; fields may be added, never renamed or removed.
package flow

import (
	"net/netip"
	"time"
)

// Family is the address family of a flow.
type Family string

// Address families.
const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// Direction says which side opened the connection.
type Direction string

// Directions. Unknown is used only for sockets found already open whose role could not be
// established (no listener on the local port and no record of the open).
const (
	Client           Direction = "client" // active open (connect)
	Server           Direction = "server" // passive open (accept)
	DirectionUnknown Direction = "unknown"
)

// Outcome says how a connection ended. Interim records carry Open.
type Outcome string

// Outcomes.
const (
	Open    Outcome = "open"    // interim record: the connection is still open
	OK      Outcome = "ok"      // closed by an orderly FIN exchange
	Refused Outcome = "refused" // the connect was answered by a reset
	Timeout Outcome = "timeout" // no answer: the open or the transfer timed out
	Reset   Outcome = "reset"   // the peer reset an established connection
	Aborted Outcome = "aborted" // this side aborted (reset sent, e.g. SO_LINGER 0 or unread data)
)

// Record is one TCP connection seen from one side, for one reporting interval. A connection
// yields zero or more interim records (Interim=true) while it is open and exactly one final
// record when it closes. Counters are deltas since the previous record of the same ConnID, so
// summing a connection's records gives its totals. Start is the connection's start in every
// record; End is when the counters were read (the close, for the final record).
type Record struct {
	ConnID     uint64     `json:"conn_id"` // stable across a connection's records; unique per exporter boot
	Family     Family     `json:"family"`
	LocalAddr  netip.Addr `json:"local_addr"`
	LocalPort  uint16     `json:"local_port"`
	RemoteAddr netip.Addr `json:"remote_addr"`
	RemotePort uint16     `json:"remote_port"`
	Direction  Direction  `json:"direction"`

	Netns    uint32   `json:"netns"`     // network namespace inode number
	CgroupID uint64   `json:"cgroup_id"` // the socket's own (cgroup v2) cgroup id
	Workload Workload `json:"workload"`

	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Interim    bool      `json:"interim"`
	StartKnown bool      `json:"start_known"` // false when the open was not observed (socket predates the exporter or its start slot was overwritten): Start is then when it was first seen

	BytesSent          uint64 `json:"bytes_sent"`     // payload bytes acknowledged by the peer (no SYN/FIN, no retransmitted duplicates)
	BytesReceived      uint64 `json:"bytes_received"` // payload bytes received in sequence (no SYN/FIN, no duplicates)
	SegsSent           uint64 `json:"segs_sent"`
	SegsReceived       uint64 `json:"segs_received"`
	Retransmits        uint64 `json:"retransmits"` // retransmitted segments
	BytesRetransmitted uint64 `json:"bytes_retransmitted"`
	SrttUs             uint32 `json:"srtt_us"`    // smoothed RTT at the time of the record
	MinRttUs           uint32 `json:"min_rtt_us"` // minimum RTT observed over the connection

	ResetsSent     uint32  `json:"resets_sent"`
	ResetsReceived uint32  `json:"resets_received"`
	Outcome        Outcome `json:"outcome"`
	CloseState     string  `json:"close_state"` // TCP state the socket left for CLOSE (final) or is in (interim), e.g. "FIN_WAIT2"

	// HostNetwork: the socket is in the node's own network namespace (host network), so its
	// local address is the node's; its workload is named by (address, port), never by address.
	HostNetwork bool `json:"host_network,omitempty"`
	// NatRemoteAddr/Port: for a client socket whose destination was translated (a Service VIP,
	// DNAT), the destination after translation, read from conntrack. Zero when not translated
	// or unknown.
	NatRemoteAddr netip.Addr `json:"nat_remote_addr,omitzero"`
	NatRemotePort uint16     `json:"nat_remote_port,omitempty"`
}

// Workload names the local end of a flow, as far as the exporter can tell from the socket's
// cgroup and the process that created it. Pod names, namespaces and owners are resolved later
// by the collector from the pod UID.
type Workload struct {
	Kind        WorkloadKind `json:"kind"`
	PodUID      string       `json:"pod_uid,omitempty"`
	ContainerID string       `json:"container_id,omitempty"`
	Runtime     string       `json:"runtime,omitempty"` // containerd, cri-o, docker, podman
	Unit        string       `json:"unit,omitempty"`    // systemd unit (service or scope)
	CgroupPath  string       `json:"cgroup_path,omitempty"`
	Pid         uint32       `json:"pid,omitempty"`  // process that created the socket, when captured in process context
	Comm        string       `json:"comm,omitempty"` // its command name
}

// WorkloadKind classifies a Workload.
type WorkloadKind string

// Workload kinds, most specific first.
const (
	KindPod       WorkloadKind = "pod"       // a Kubernetes pod (PodUID set, ContainerID when known)
	KindContainer WorkloadKind = "container" // a container outside Kubernetes
	KindUnit      WorkloadKind = "systemd"   // a systemd service or scope
	KindCgroup    WorkloadKind = "cgroup"    // some other cgroup (CgroupPath set)
	KindHost      WorkloadKind = "host"      // the root cgroup: the host itself
	KindUnknown   WorkloadKind = "unknown"   // the cgroup could not be resolved (e.g. removed before lookup)
)

// Key returns a stable textual name of the workload for grouping and display.
func (w Workload) Key() string {
	switch w.Kind {
	case KindPod:
		if w.ContainerID != "" {
			return "pod/" + w.PodUID + "/" + w.ContainerID
		}
		return "pod/" + w.PodUID
	case KindContainer:
		return "container/" + w.ContainerID
	case KindUnit:
		return "systemd/" + w.Unit
	case KindCgroup:
		return "cgroup" + w.CgroupPath
	case KindHost:
		return "host"
	}
	return "unknown"
}
