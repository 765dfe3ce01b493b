// Package flowbatch is the Go side of the exporter→collector wire format (api/flow/v1): the
// batch, aggregate and ownership-heartbeat types both ends use, their compact protobuf encoding
// and decoding, and the validation the collector applies before it accepts a batch.
package flowbatch

import (
	"net/netip"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
)

// Wire versions this code speaks.
const (
	MajorVersion = 1
	MinorVersion = 0
)

// Header identifies a batch: the collector de-duplicates by (ExporterID, BootID, Sequence).
type Header struct {
	Major      uint32 `json:"major_version"`
	Minor      uint32 `json:"minor_version"`
	ExporterID string `json:"exporter_id"`
	NodeName   string `json:"node_name,omitempty"`
	BootID     string `json:"boot_id"`
	Sequence   uint64 `json:"sequence"`
}

// Counter is one exporter counter's increase since the previous batch of the same boot.
type Counter struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// Batch is the unit of transport, acknowledgement and de-duplication.
type Batch struct {
	Header
	Counters   []Counter     `json:"counters,omitempty"`
	Records    []flow.Record `json:"records,omitempty"`
	Aggregates []Aggregate   `json:"aggregates,omitempty"`
	Heartbeat  *Heartbeat    `json:"heartbeat,omitempty"`
}

// Aggregate folds short flows of one (local workload, remote address, remote port, direction)
// together; the exporter emits them instead of single records when it degrades granularity
// under CPU pressure. Counters are sums over the folded flows.
type Aggregate struct {
	Workload   flow.Workload  `json:"workload"`
	Netns      uint32         `json:"netns"`
	CgroupID   uint64         `json:"cgroup_id"`
	LocalAddr  netip.Addr     `json:"local_addr"`
	RemoteAddr netip.Addr     `json:"remote_addr"`
	RemotePort uint16         `json:"remote_port"`
	Direction  flow.Direction `json:"direction"`

	Flows      uint64    `json:"flows"`
	FirstStart time.Time `json:"first_start"`
	LastEnd    time.Time `json:"last_end"`

	BytesSent          uint64                  `json:"bytes_sent"`
	BytesReceived      uint64                  `json:"bytes_received"`
	SegsSent           uint64                  `json:"segs_sent"`
	SegsReceived       uint64                  `json:"segs_received"`
	Retransmits        uint64                  `json:"retransmits"`
	BytesRetransmitted uint64                  `json:"bytes_retransmitted"`
	ResetsSent         uint64                  `json:"resets_sent"`
	ResetsReceived     uint64                  `json:"resets_received"`
	SrttUsSum          uint64                  `json:"srtt_us_sum"`
	Outcomes           map[flow.Outcome]uint64 `json:"outcomes,omitempty"`
}

// Heartbeat lists the local IPs the node's workloads hold. With Complete set the list is all of
// them, so an address missing from it is not held by this node at Time.
type Heartbeat struct {
	Node       string      `json:"node"`
	Time       time.Time   `json:"time"`
	Complete   bool        `json:"complete"`
	Ownerships []Ownership `json:"ownerships"`
}

// Ownership says a local workload held Addr during [From, To). A zero To means "still held at
// the heartbeat's Time".
type Ownership struct {
	Addr      netip.Addr    `json:"addr"`
	Workload  flow.Workload `json:"workload"`
	Namespace string        `json:"namespace,omitempty"` // Kubernetes namespace, when the node knows it
	PodName   string        `json:"pod_name,omitempty"`  // Kubernetes pod name, when the node knows it
	Netns     uint32        `json:"netns,omitempty"`
	Port      uint16        `json:"port,omitempty"` // a host-network listener: the workload holds (Addr, Port), not Addr
	From      time.Time     `json:"from"`
	To        time.Time     `json:"to"`
}
