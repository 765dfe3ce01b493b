// Package ownership keeps, per IP address (and per IP and port for host-network listeners), the
// time ranges during which each workload, Service, node or named network held it, with the
// source that said so, and answers "who held this address at that moment" without guessing:
// contradicting sources give a conflict, missing or expired knowledge gives a reason.
package ownership

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/flowscope/flowscope/internal/flow"
)

// Owner is the identity that held an address: a pod (with its owning workload), a Service, a
// node, a non-Kubernetes host workload or a named network. Owners are interned (Intern) so a
// range costs one pointer for its owner. Labels is the canonical "k=v,k=v" form (sorted).
type Owner struct {
	Kind           flow.EndpointKind
	Cluster        string
	Namespace      string
	Workload       string // owning workload (Deployment, StatefulSet, ...), the pod name for bare pods
	WorkloadKind   string
	Pod            string
	PodUID         string
	Node           string
	Zone           string // the node's topology.kubernetes.io/zone (filled from the node when unset)
	ServiceAccount string
	Service        string
	Network        string
	Labels         string
}

// SameIdentity reports whether a and b name the same thing, however much detail each carries:
// pods by UID when both have one (else namespace and name), Services by namespace and name,
// nodes and networks by name, host workloads by node and workload.
func SameIdentity(a, b Owner) bool {
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case flow.EndpointPod:
		if a.PodUID != "" && b.PodUID != "" {
			return a.PodUID == b.PodUID
		}
		return a.Pod != "" && a.Namespace == b.Namespace && a.Pod == b.Pod
	case flow.EndpointService:
		return a.Namespace == b.Namespace && a.Service == b.Service
	case flow.EndpointNode:
		return a.Node == b.Node
	case flow.EndpointNetwork:
		return a.Network == b.Network
	}
	return a.Node == b.Node && a.Workload == b.Workload && a.WorkloadKind == b.WorkloadKind
}

// detail counts the named fields of o: the richer of two owners of the same identity is shown.
func (o Owner) detail() int {
	n := 0
	for _, s := range []string{o.Namespace, o.Workload, o.WorkloadKind, o.Pod, o.PodUID, o.Node, o.Zone, o.ServiceAccount, o.Service, o.Labels} {
		if s != "" {
			n++
		}
	}
	return n
}

// CanonicalLabels renders labels as the sorted "k=v,k=v" form Owner.Labels uses.
func CanonicalLabels(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(labels))
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(labels[k])
	}
	return b.String()
}

// labelMaps caches the parsed form of canonical label strings: endpoints share one read-only
// map per distinct label set. Bounded: beyond maxLabelMaps distinct sets it parses every time.
var labelMaps sync.Map // string → map[string]string

var labelMapCount struct {
	sync.Mutex
	n int
}

const maxLabelMaps = 100_000

func parseLabels(s string) map[string]string {
	if s == "" {
		return nil
	}
	if m, ok := labelMaps.Load(s); ok {
		return m.(map[string]string)
	}
	m := map[string]string{}
	for kv := range strings.SplitSeq(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	labelMapCount.Lock()
	if labelMapCount.n < maxLabelMaps {
		labelMapCount.n++
		labelMaps.Store(s, m)
	}
	labelMapCount.Unlock()
	return m
}

// Endpoint renders o as the flow endpoint addr:port. The Labels map is shared between
// endpoints with the same labels and must be treated as read-only.
func (o Owner) Endpoint(addr netip.Addr, port uint16) flow.Endpoint {
	e := flow.Endpoint{Addr: addr, Port: port}
	e.Kind = o.Kind
	e.Cluster = o.Cluster
	e.Namespace = o.Namespace
	e.Workload = o.Workload
	e.WorkloadKind = o.WorkloadKind
	e.Pod = o.Pod
	e.PodUID = o.PodUID
	e.Node = o.Node
	e.Zone = o.Zone
	e.ServiceAccount = o.ServiceAccount
	e.Service = o.Service
	e.Network = o.Network
	e.Labels = parseLabels(o.Labels)
	return e
}

// Source says where a range came from. A range may merge claims of several sources (a bit set).
type Source uint8

// Sources. Exporter sources (heartbeats and the local ends of flows) are definite: the address
// was held over the whole range. Kubernetes sources are possible: the range is a superset of
// the time the object held the address (from its creation to when its release was observed).
const (
	SourceHeartbeat         Source = 1 << iota // an exporter's ownership heartbeat
	SourceFlow                                 // the local end of a flow record
	SourceKubePod                              // Pod status.podIPs
	SourceKubeService                          // Service ClusterIPs
	SourceKubeEndpointSlice                    // EndpointSlice endpoint addresses
	SourceKubeNode                             // Node addresses
	SourceCIDR                                 // a named network from the CIDR file
)

const exporterSources = SourceHeartbeat | SourceFlow

// Definite reports whether s only holds exporter sources.
func (s Source) Definite() bool { return s != 0 && s&^exporterSources == 0 }

// String names the sources in s, joined by "+".
func (s Source) String() string {
	names := []string{"heartbeat", "flow", "kube-pod", "kube-service", "kube-endpointslice", "kube-node", "cidr"}
	var out []string
	for i, n := range names {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "+")
}
