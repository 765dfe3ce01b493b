package policy

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/store"
)

// Recommendation is the answer of Recommend.
type Recommendation struct {
	Policies []networkingv1.NetworkPolicy `json:"policies"`
	Skipped  []string                     `json:"skipped,omitempty"` // workloads without labels to select them by
}

// Recommend returns one least-privilege NetworkPolicy per pod workload in namespaces (all
// when empty) seen in groups: it selects the workload's pods by the labels they all share and
// allows exactly the observed peers on the observed ports, in both directions, plus DNS
// (UDP and TCP 53) egress, which TCP flow records cannot show.
func Recommend(groups []store.FlowGroup, namespaces []string) Recommendation {
	wls := map[string]*workload{}
	get := func(e flow.Endpoint) *workload {
		if e.Kind != flow.EndpointPod {
			return nil
		}
		w := wls[e.Name()]
		if w == nil {
			w = &workload{ns: e.Namespace, name: e.Workload, labels: clone(e.Labels), in: map[string]*peerPorts{}, out: map[string]*peerPorts{}}
			wls[e.Name()] = w
		}
		w.labels = intersect(w.labels, e.Labels)
		return w
	}
	for _, g := range groups {
		get(g.Client)
		get(g.Server)
	}
	for _, g := range groups {
		if w := get(g.Server); w != nil {
			w.addPeer(w.in, g.Client, wls, g.Server.Port)
		}
		if w := get(g.Client); w != nil {
			w.addPeer(w.out, g.Server, wls, g.Server.Port)
		}
	}
	rec := Recommendation{Policies: []networkingv1.NetworkPolicy{}}
	ids := make([]string, 0, len(wls))
	for id := range wls {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		w := wls[id]
		if len(namespaces) > 0 && !slices.Contains(namespaces, w.ns) {
			continue
		}
		if len(w.labels) == 0 {
			rec.Skipped = append(rec.Skipped, id)
			continue
		}
		rec.Policies = append(rec.Policies, w.policy())
	}
	return rec
}

type workload struct {
	ns, name string
	labels   map[string]string
	in, out  map[string]*peerPorts // by peer key
}

type peerPorts struct {
	peer  networkingv1.NetworkPolicyPeer
	any   bool // no peer restriction possible (no identity, no address)
	ports map[uint16]bool
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch k {
		case "pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name", "pod-template-generation", "apps.kubernetes.io/pod-index":
			continue
		}
		out[k] = v
	}
	return out
}

func intersect(a, b map[string]string) map[string]string {
	for k, v := range a {
		if b[k] != v {
			delete(a, k)
		}
	}
	return a
}

// addPeer records that e talked to w on port (inbound or outbound set).
func (w *workload) addPeer(set map[string]*peerPorts, e flow.Endpoint, wls map[string]*workload, port uint16) {
	key, pp := peerFor(e, wls)
	if cur := set[key]; cur != nil {
		cur.ports[port] = true
		return
	}
	pp.ports = map[uint16]bool{port: true}
	set[key] = pp
}

func peerFor(e flow.Endpoint, wls map[string]*workload) (string, *peerPorts) {
	if e.Kind == flow.EndpointPod {
		peer := networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": e.Namespace}}}
		if w := wls[e.Name()]; w != nil && len(w.labels) > 0 {
			peer.PodSelector = &metav1.LabelSelector{MatchLabels: w.labels}
		} else {
			peer.PodSelector = &metav1.LabelSelector{}
		}
		return "pod:" + e.Name(), &peerPorts{peer: peer}
	}
	if e.Addr.IsValid() {
		a := e.Addr.Unmap()
		cidr := netip.PrefixFrom(a, a.BitLen()).String()
		return "ip:" + cidr, &peerPorts{peer: networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr}}}
	}
	return "any", &peerPorts{any: true}
}

var nameRE = regexp.MustCompile(`[^a-z0-9-]+`)

func (w *workload) policy() networkingv1.NetworkPolicy {
	name := strings.Trim(nameRE.ReplaceAllString(strings.ToLower(w.name), "-"), "-")
	p := networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: "flowscope-" + name, Namespace: w.ns, Labels: map[string]string{"app.kubernetes.io/managed-by": "flowscope"}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: w.labels},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{},
		},
	}
	for _, r := range rules(w.in) {
		p.Spec.Ingress = append(p.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: r.peers, Ports: r.ports})
	}
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	dns := intstr.FromInt32(53)
	p.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}}}}
	for _, r := range rules(w.out) {
		p.Spec.Egress = append(p.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: r.peers, Ports: r.ports})
	}
	return p
}

type rule struct {
	peers []networkingv1.NetworkPolicyPeer
	ports []networkingv1.NetworkPolicyPort
}

// rules groups peers with the same port set into one rule each, deterministically.
func rules(set map[string]*peerPorts) []rule {
	byPorts := map[string]*rule{}
	var order []string
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		pp := set[k]
		ports := make([]int, 0, len(pp.ports))
		for p := range pp.ports {
			ports = append(ports, int(p))
		}
		sort.Ints(ports)
		pk := fmt.Sprint(ports)
		if pp.any {
			pk = "any " + pk
		}
		r := byPorts[pk]
		if r == nil {
			r = &rule{}
			tcp := corev1.ProtocolTCP
			for _, p := range ports {
				port := intstr.FromInt32(int32(p))
				r.ports = append(r.ports, networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &port})
			}
			byPorts[pk] = r
			order = append(order, pk)
		}
		if !pp.any {
			r.peers = append(r.peers, pp.peer)
		}
	}
	out := make([]rule, 0, len(order))
	for _, k := range order {
		r := *byPorts[k]
		r.peers = collapseIPBlocks(r.peers)
		if strings.HasPrefix(k, "any ") {
			r.peers = nil // every source/destination on these ports
		}
		out = append(out, r)
	}
	return out
}

// MaxIPBlocks is how many single-address ipBlocks a rule lists before they are widened to
// their /24 (IPv4) or /64 (IPv6) networks, to keep recommendations readable.
const MaxIPBlocks = 16

func collapseIPBlocks(peers []networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer {
	n := 0
	for _, p := range peers {
		if p.IPBlock != nil {
			n++
		}
	}
	if n <= MaxIPBlocks {
		return peers
	}
	var out []networkingv1.NetworkPolicyPeer
	seen := map[string]bool{}
	for _, p := range peers {
		if p.IPBlock == nil {
			out = append(out, p)
			continue
		}
		pfx := netip.MustParsePrefix(p.IPBlock.CIDR)
		bits := 24
		if pfx.Addr().Is6() {
			bits = 64
		}
		wide, _ := pfx.Addr().Prefix(bits)
		if !seen[wide.String()] {
			seen[wide.String()] = true
			out = append(out, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: wide.String()}})
		}
	}
	return out
}
