// Package policy answers segmentation questions: it evaluates observed flows against
// Kubernetes NetworkPolicies (networking.k8s.io/v1 semantics) and against a declared
// allow-list, recommends least-privilege NetworkPolicies from observed flows, and says which
// flows a proposed set of policies would block. Policy and allow-list files are parsed with
// file, line and column in every error.
package policy

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flowscope/flowscope/internal/flow"
)

// Peer is one end of a flow as NetworkPolicy evaluation sees it.
type Peer struct {
	Pod        bool              // a pod of the cluster (selectable by pod/namespace selectors)
	Namespace  string            // for pods
	Labels     map[string]string // pod labels
	Addr       netip.Addr        // its address, when known (for ipBlock)
	NamedPorts map[string]int32  // container port names → numbers (TCP), when known
	Name       string            // display name
}

// PeerOf converts an attributed endpoint. Host-network ends (nodes, host workloads) are not
// pods: NetworkPolicies do not select them and match them only by ipBlock.
func PeerOf(e flow.Endpoint) Peer {
	return Peer{Pod: e.Kind == flow.EndpointPod, Namespace: e.Namespace, Labels: e.Labels, Addr: e.Addr, Name: e.Name()}
}

// Evaluator decides whether NetworkPolicies allow a TCP connection.
type Evaluator struct {
	byNS     map[string][]*compiled
	nsLabels func(ns string) map[string]string
}

type compiled struct {
	p       *networkingv1.NetworkPolicy
	sel     labels.Selector
	ingress bool
	egress  bool
}

// NewEvaluator compiles policies. nsLabels returns a namespace's labels (nil: only the
// kubernetes.io/metadata.name label every namespace carries).
func NewEvaluator(policies []networkingv1.NetworkPolicy, nsLabels func(string) map[string]string) (*Evaluator, error) {
	e := &Evaluator{byNS: map[string][]*compiled{}, nsLabels: nsLabels}
	for i := range policies {
		p := &policies[i]
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		if err != nil {
			return nil, fmt.Errorf("policy %s/%s: podSelector: %w", p.Namespace, p.Name, err)
		}
		c := &compiled{p: p, sel: sel}
		if len(p.Spec.PolicyTypes) == 0 {
			// Defaults of the API: Ingress always, Egress when egress rules are present.
			c.ingress, c.egress = true, len(p.Spec.Egress) > 0
		}
		for _, t := range p.Spec.PolicyTypes {
			switch t {
			case networkingv1.PolicyTypeIngress:
				c.ingress = true
			case networkingv1.PolicyTypeEgress:
				c.egress = true
			}
		}
		ns := p.Namespace
		if ns == "" {
			ns = "default"
		}
		e.byNS[ns] = append(e.byNS[ns], c)
	}
	return e, nil
}

func (e *Evaluator) namespaceLabels(ns string) labels.Set {
	set := labels.Set{}
	if e.nsLabels != nil {
		for k, v := range e.nsLabels(ns) {
			set[k] = v
		}
	}
	set["kubernetes.io/metadata.name"] = ns
	return set
}

// Verdict is the outcome of an evaluation.
type Verdict struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"` // why it is denied
}

// Allow evaluates a TCP connection from client to server's port: the client's egress
// policies and the server's ingress policies must both allow it.
func (e *Evaluator) Allow(client, server Peer, port uint16) Verdict {
	if client.Pod {
		if v := e.side(client, server, port, true); !v.Allowed {
			return v
		}
	}
	if server.Pod {
		return e.side(server, client, port, false)
	}
	return Verdict{Allowed: true}
}

// side checks the policies selecting pod for one direction against peer.
func (e *Evaluator) side(pod, peer Peer, port uint16, egress bool) Verdict {
	var selecting []string
	var unknownPort string // a named port a rule names that the destination's ports do not resolve
	podLabels := labels.Set(pod.Labels)
	for _, c := range e.byNS[pod.Namespace] {
		if (egress && !c.egress) || (!egress && !c.ingress) || !c.sel.Matches(podLabels) {
			continue
		}
		selecting = append(selecting, c.p.Namespace+"/"+c.p.Name)
		ok, unknown := e.rulesAllow(c, pod, peer, port, egress)
		if ok {
			return Verdict{Allowed: true}
		}
		if unknownPort == "" {
			unknownPort = unknown
		}
	}
	if len(selecting) == 0 {
		return Verdict{Allowed: true} // not isolated in this direction
	}
	sort.Strings(selecting)
	dir, verb := "ingress", "from "+peer.Name
	if egress {
		dir, verb = "egress", "to "+peer.Name
	}
	reason := fmt.Sprintf("%s of %s isolated by %s: no rule allows %s port %d", dir, pod.Name, strings.Join(selecting, ", "), verb, port)
	if unknownPort != "" {
		dst := pod.Name
		if egress {
			dst = peer.Name
		}
		reason += fmt.Sprintf(" (named port %q unknown for %s: give its pods' container ports)", unknownPort, dst)
	}
	return Verdict{Reason: reason}
}

// rulesAllow reports whether a rule of c allows the connection, and else a named port that a
// rule whose peers match names while the destination pod's container ports are not known.
func (e *Evaluator) rulesAllow(c *compiled, pod, peer Peer, port uint16, egress bool) (bool, string) {
	// For ingress, named ports are the selected pod's own; for egress, the destination's
	// (a pod: ends outside the cluster have none).
	dst := pod
	if egress {
		dst = peer
	}
	var unknown string
	check := func(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) bool {
		if !e.peersMatch(peers, c.p.Namespace, peer) {
			return false
		}
		ok, name := portsMatch(ports, port, dst.NamedPorts)
		if !ok && name != "" && dst.Pod && dst.NamedPorts == nil && unknown == "" {
			unknown = name
		}
		return ok
	}
	if egress {
		for _, r := range c.p.Spec.Egress {
			if check(r.To, r.Ports) {
				return true, ""
			}
		}
		return false, unknown
	}
	for _, r := range c.p.Spec.Ingress {
		if check(r.From, r.Ports) {
			return true, ""
		}
	}
	return false, unknown
}

// peersMatch: an empty list matches every peer; otherwise any entry must match.
func (e *Evaluator) peersMatch(peers []networkingv1.NetworkPolicyPeer, policyNS string, peer Peer) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if e.peerMatches(p, policyNS, peer) {
			return true
		}
	}
	return false
}

func (e *Evaluator) peerMatches(p networkingv1.NetworkPolicyPeer, policyNS string, peer Peer) bool {
	if p.IPBlock != nil {
		return ipBlockMatches(p.IPBlock, peer.Addr)
	}
	if !peer.Pod {
		return false // selectors select pods only
	}
	if p.NamespaceSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(p.NamespaceSelector)
		if err != nil || !sel.Matches(e.namespaceLabels(peer.Namespace)) {
			return false
		}
	} else if peer.Namespace != policyNS {
		return false // a podSelector alone selects in the policy's namespace
	}
	if p.PodSelector == nil {
		return true
	}
	sel, err := metav1.LabelSelectorAsSelector(p.PodSelector)
	return err == nil && sel.Matches(labels.Set(peer.Labels))
}

func ipBlockMatches(b *networkingv1.IPBlock, addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !cidr.Contains(addr) {
		return false
	}
	for _, ex := range b.Except {
		if p, err := netip.ParsePrefix(ex); err == nil && p.Contains(addr) {
			return false
		}
	}
	return true
}

// portsMatch: an empty list matches every port; otherwise any entry must match (TCP only).
// Without a match it returns the first named port that named does not resolve.
func portsMatch(ports []networkingv1.NetworkPolicyPort, port uint16, named map[string]int32) (bool, string) {
	if len(ports) == 0 {
		return true, ""
	}
	var unknown string
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Port == nil {
			return true, "" // every port of the protocol
		}
		if p.Port.Type == intstr.String {
			n, ok := named[p.Port.StrVal]
			if ok && n == int32(port) {
				return true, ""
			}
			if !ok && unknown == "" {
				unknown = p.Port.StrVal
			}
			continue
		}
		lo, hi := p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			hi = *p.EndPort
		}
		if int32(port) >= lo && int32(port) <= hi {
			return true, ""
		}
	}
	return false, unknown
}
