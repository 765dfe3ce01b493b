// Package kube turns Kubernetes objects — Pods, Services, EndpointSlices, Nodes, and the
// ReplicaSets and Jobs that name pods' owning workloads — into ownership ranges in time, fed by
// client-go informers (Source) or by any other stream of objects (Tracker, used by the demo).
package kube

import (
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
)

// Config names the cluster and the pod labels copied into owners.
type Config struct {
	Cluster string
	Labels  []string // pod label keys carried in owners (e.g. app.kubernetes.io/name, team)
}

// claimID identifies one ownership claim of an object, for diffing updates.
type claimID struct {
	addr  netip.Addr
	port  uint16
	owner ownership.Owner
	src   ownership.Source
}

// Tracker keeps the store's Kubernetes ranges in step with the objects it is shown: each
// object's current addresses are open ranges from the object's creation; an address an object
// no longer holds (IP changed, pod finished or deleted) is closed at the moment that was
// observed. Ranges are thus supersets of the real holding times (see docs/attribution.md).
type Tracker struct {
	cfg   Config
	store *ownership.Store
	now   func() time.Time
	log   *slog.Logger

	mu       sync.Mutex
	claims   map[string]map[claimID]struct{} // object key → its open claims
	rsOwner  map[string]string               // namespace/replicaset → deployment
	jobOwner map[string]string               // namespace/job → cronjob
}

// NewTracker returns a Tracker writing to store; now is the collector's clock.
func NewTracker(cfg Config, store *ownership.Store, now func() time.Time, log *slog.Logger) *Tracker {
	return &Tracker{
		cfg: cfg, store: store, now: now, log: log.With("component", "kube"),
		claims: map[string]map[claimID]struct{}{}, rsOwner: map[string]string{}, jobOwner: map[string]string{},
	}
}

// set replaces the claims of one object: claims it no longer makes are closed now, new ones
// are opened from `from`.
func (t *Tracker) set(key string, from time.Time, want []claimID) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.claims[key]
	next := make(map[claimID]struct{}, len(want))
	for _, c := range want {
		next[c] = struct{}{}
		if _, ok := old[c]; ok {
			continue
		}
		if err := t.store.Open(ownership.Claim{Addr: c.addr, Port: c.port, Owner: c.owner, From: from, Source: c.src}); err != nil {
			t.log.Warn("ownership not recorded", "object", key, "err", err)
		}
	}
	for c := range old {
		if _, ok := next[c]; !ok {
			t.store.Close(c.addr, c.port, c.owner, c.src, now)
		}
	}
	if len(next) == 0 {
		delete(t.claims, key)
	} else {
		t.claims[key] = next
	}
}

// Objects holds claims: Len returns how many objects do.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.claims)
}

func created(m *metav1.ObjectMeta) time.Time {
	if m.CreationTimestamp.IsZero() {
		return time.Unix(0, 0)
	}
	return m.CreationTimestamp.Time
}

// Pod records a pod's addresses (add or update).
func (t *Tracker) Pod(p *corev1.Pod) {
	key := "pod/" + string(p.UID)
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		t.set(key, time.Time{}, nil) // a finished pod has released its addresses
		return
	}
	owner := t.podOwner(p)
	var want []claimID
	for _, a := range podIPs(p) {
		if !p.Spec.HostNetwork {
			want = append(want, claimID{addr: a, owner: owner, src: ownership.SourceKubePod})
			continue
		}
		// A host-network pod shares its node's address: only its listening ports are its own.
		for _, c := range p.Spec.Containers {
			for _, port := range c.Ports {
				if port.Protocol == "" || port.Protocol == corev1.ProtocolTCP {
					want = append(want, claimID{addr: a, port: uint16(port.ContainerPort), owner: owner, src: ownership.SourceKubePod})
				}
			}
		}
	}
	t.set(key, created(&p.ObjectMeta), want)
}

// PodDeleted records that a pod is gone.
func (t *Tracker) PodDeleted(p *corev1.Pod) { t.set("pod/"+string(p.UID), time.Time{}, nil) }

func podIPs(p *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	for _, ip := range p.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	if len(out) == 0 && p.Status.PodIP != "" {
		if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// podOwner names a pod and its owning workload through its controller reference.
func (t *Tracker) podOwner(p *corev1.Pod) ownership.Owner {
	o := ownership.Owner{
		Kind: flow.EndpointPod, Cluster: t.cfg.Cluster, Namespace: p.Namespace, Pod: p.Name, PodUID: string(p.UID),
		Node: p.Spec.NodeName, ServiceAccount: p.Spec.ServiceAccountName, Workload: p.Name, WorkloadKind: "Pod",
	}
	if len(t.cfg.Labels) > 0 {
		sel := map[string]string{}
		for _, k := range t.cfg.Labels {
			if v, ok := p.Labels[k]; ok {
				sel[k] = v
			}
		}
		o.Labels = ownership.CanonicalLabels(sel)
	}
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return o
	}
	o.Workload, o.WorkloadKind = ref.Name, ref.Kind
	t.mu.Lock()
	defer t.mu.Unlock()
	switch ref.Kind {
	case "ReplicaSet":
		if d, ok := t.rsOwner[p.Namespace+"/"+ref.Name]; ok {
			if d != "" {
				o.Workload, o.WorkloadKind = d, "Deployment"
			}
		} else if h := p.Labels["pod-template-hash"]; h != "" && strings.HasSuffix(ref.Name, "-"+h) {
			o.Workload, o.WorkloadKind = strings.TrimSuffix(ref.Name, "-"+h), "Deployment"
		}
	case "Job":
		if c := t.jobOwner[p.Namespace+"/"+ref.Name]; c != "" {
			o.Workload, o.WorkloadKind = c, "CronJob"
		}
	}
	return o
}

// ReplicaSet records which Deployment owns a ReplicaSet.
func (t *Tracker) ReplicaSet(rs *appsv1.ReplicaSet) {
	owner := ""
	if ref := metav1.GetControllerOf(rs); ref != nil && ref.Kind == "Deployment" {
		owner = ref.Name
	}
	t.mu.Lock()
	t.rsOwner[rs.Namespace+"/"+rs.Name] = owner
	t.mu.Unlock()
}

// ReplicaSetDeleted forgets a ReplicaSet.
func (t *Tracker) ReplicaSetDeleted(rs *appsv1.ReplicaSet) {
	t.mu.Lock()
	delete(t.rsOwner, rs.Namespace+"/"+rs.Name)
	t.mu.Unlock()
}

// Job records which CronJob owns a Job.
func (t *Tracker) Job(j *batchv1.Job) {
	if ref := metav1.GetControllerOf(j); ref != nil && ref.Kind == "CronJob" {
		t.mu.Lock()
		t.jobOwner[j.Namespace+"/"+j.Name] = ref.Name
		t.mu.Unlock()
	}
}

// JobDeleted forgets a Job.
func (t *Tracker) JobDeleted(j *batchv1.Job) {
	t.mu.Lock()
	delete(t.jobOwner, j.Namespace+"/"+j.Name)
	t.mu.Unlock()
}

// Service records a Service's cluster IPs.
func (t *Tracker) Service(s *corev1.Service) {
	owner := ownership.Owner{Kind: flow.EndpointService, Cluster: t.cfg.Cluster, Namespace: s.Namespace, Service: s.Name, Workload: s.Name, WorkloadKind: "Service"}
	ips := s.Spec.ClusterIPs
	if len(ips) == 0 && s.Spec.ClusterIP != "" {
		ips = []string{s.Spec.ClusterIP}
	}
	var want []claimID
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip); err == nil {
			want = append(want, claimID{addr: a.Unmap(), owner: owner, src: ownership.SourceKubeService})
		}
	}
	t.set("svc/"+s.Namespace+"/"+s.Name+"/"+string(s.UID), created(&s.ObjectMeta), want)
}

// ServiceDeleted records that a Service is gone.
func (t *Tracker) ServiceDeleted(s *corev1.Service) {
	t.set("svc/"+s.Namespace+"/"+s.Name+"/"+string(s.UID), time.Time{}, nil)
}

// ZoneLabel is the Node label naming the node's zone.
const ZoneLabel = corev1.LabelTopologyZone // topology.kubernetes.io/zone

// Node records a node's addresses and zone (its pods' owners carry the zone too).
func (t *Tracker) Node(n *corev1.Node) {
	zone := n.Labels[ZoneLabel]
	t.store.SetNodeZone(n.Name, zone)
	owner := ownership.Owner{Kind: flow.EndpointNode, Cluster: t.cfg.Cluster, Node: n.Name, Zone: zone, Workload: n.Name, WorkloadKind: "Node"}
	var want []claimID
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			want = append(want, claimID{addr: ip.Unmap(), owner: owner, src: ownership.SourceKubeNode})
		}
	}
	t.set("node/"+n.Name+"/"+string(n.UID), created(&n.ObjectMeta), want)
}

// NodeDeleted records that a node is gone.
func (t *Tracker) NodeDeleted(n *corev1.Node) {
	t.store.SetNodeZone(n.Name, "")
	t.set("node/"+n.Name+"/"+string(n.UID), time.Time{}, nil)
}

// EndpointSlice records the pod addresses a slice lists. These ranges only ever add owners
// to a moment (a slice may lag its pods), so they can turn an answer into a conflict or a gap,
// never into a wrong name.
func (t *Tracker) EndpointSlice(s *discoveryv1.EndpointSlice) {
	var want []claimID
	for _, ep := range s.Endpoints {
		ref := ep.TargetRef
		if ref == nil || ref.Kind != "Pod" {
			continue
		}
		ns := ref.Namespace
		if ns == "" {
			ns = s.Namespace
		}
		owner := ownership.Owner{Kind: flow.EndpointPod, Cluster: t.cfg.Cluster, Namespace: ns, Pod: ref.Name, PodUID: string(ref.UID)}
		for _, ip := range ep.Addresses {
			if a, err := netip.ParseAddr(ip); err == nil {
				want = append(want, claimID{addr: a.Unmap(), owner: owner, src: ownership.SourceKubeEndpointSlice})
			}
		}
	}
	t.set("eps/"+s.Namespace+"/"+s.Name+"/"+string(s.UID), created(&s.ObjectMeta), want)
}

// EndpointSliceDeleted records that a slice is gone.
func (t *Tracker) EndpointSliceDeleted(s *discoveryv1.EndpointSlice) {
	t.set("eps/"+s.Namespace+"/"+s.Name+"/"+string(s.UID), time.Time{}, nil)
}
