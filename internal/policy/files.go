package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flowscope/flowscope/internal/specfile"
)

// ParsePolicies reads NetworkPolicies from a YAML file: documents of kind NetworkPolicy,
// NetworkPolicyList or List. Every mistake is an error with file, line and column.
func ParsePolicies(file string, data []byte) ([]networkingv1.NetworkPolicy, error) {
	docs, err := specfile.Documents(file, data)
	if err != nil {
		return nil, err
	}
	var out []networkingv1.NetworkPolicy
	for _, doc := range docs {
		ps, err := policiesOf(file, doc)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

func policiesOf(file string, doc *yaml.Node) ([]networkingv1.NetworkPolicy, error) {
	if doc.Kind != yaml.MappingNode {
		return nil, specfile.At(file, doc, "expected a NetworkPolicy object")
	}
	kind := specfile.Locate(doc, []string{"kind"})
	if kv := valueOf(doc, "kind"); kv == "List" || kv == "NetworkPolicyList" {
		items := valueNode(doc, "items")
		if items == nil || items.Kind != yaml.SequenceNode {
			return nil, specfile.At(file, kind, "%s needs a list of items", kv)
		}
		var out []networkingv1.NetworkPolicy
		for _, it := range items.Content {
			p, err := policyOf(file, it)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, nil
	}
	p, err := policyOf(file, doc)
	if err != nil {
		return nil, err
	}
	return []networkingv1.NetworkPolicy{p}, nil
}

func valueNode(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func valueOf(m *yaml.Node, key string) string {
	if v := valueNode(m, key); v != nil {
		return v.Value
	}
	return ""
}

var unknownFieldRE = regexp.MustCompile(`unknown field "([^"]+)"`)

func policyOf(file string, doc *yaml.Node) (networkingv1.NetworkPolicy, error) {
	var p networkingv1.NetworkPolicy
	if doc.Kind != yaml.MappingNode {
		return p, specfile.At(file, doc, "expected a NetworkPolicy object")
	}
	if v := valueOf(doc, "apiVersion"); v != "networking.k8s.io/v1" {
		return p, specfile.At(file, specfile.Locate(doc, []string{"apiVersion"}), "apiVersion %q: want networking.k8s.io/v1", v)
	}
	if v := valueOf(doc, "kind"); v != "NetworkPolicy" {
		return p, specfile.At(file, specfile.Locate(doc, []string{"kind"}), "kind %q: want NetworkPolicy", v)
	}
	var generic any
	if err := doc.Decode(&generic); err != nil {
		return p, specfile.At(file, doc, "%v", err)
	}
	js, err := json.Marshal(generic)
	if err != nil {
		return p, specfile.At(file, doc, "%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, decodeError(file, doc, err)
	}
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	if err := Validate(&p); err != nil {
		var pe *pathError
		if errors.As(err, &pe) {
			return p, specfile.At(file, specfile.Locate(doc, pe.path), "%s", pe.msg)
		}
		return p, specfile.At(file, doc, "%v", err)
	}
	return p, nil
}

func decodeError(file string, doc *yaml.Node, err error) error {
	if m := unknownFieldRE.FindStringSubmatch(err.Error()); m != nil {
		if k := specfile.FindKey(doc, m[1]); k != nil {
			return specfile.At(file, k, "unknown field %q", m[1])
		}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		parts := strings.Split(te.Field, ".")
		if k := specfile.FindKey(doc, parts[len(parts)-1]); k != nil {
			return specfile.At(file, k, "%s: cannot be a %s", te.Field, te.Value)
		}
	}
	return specfile.At(file, doc, "%v", err)
}

type pathError struct {
	path []string
	msg  string
}

func (e *pathError) Error() string { return e.msg }

func perr(msg string, path ...any) error {
	p := make([]string, len(path))
	for i, x := range path {
		p[i] = fmt.Sprint(x)
	}
	return &pathError{path: p, msg: msg}
}

// Validate checks what the API server would refuse in a NetworkPolicy.
func Validate(p *networkingv1.NetworkPolicy) error {
	if p.Name == "" {
		return perr("metadata.name is required", "metadata")
	}
	if _, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector); err != nil {
		return perr("podSelector: "+err.Error(), "spec", "podSelector")
	}
	for i, t := range p.Spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			return perr(fmt.Sprintf("policyTypes: %q is neither Ingress nor Egress", t), "spec", "policyTypes", i)
		}
	}
	for i, r := range p.Spec.Ingress {
		if err := validateRule(r.From, r.Ports, "ingress", i, "from"); err != nil {
			return err
		}
	}
	for i, r := range p.Spec.Egress {
		if err := validateRule(r.To, r.Ports, "egress", i, "to"); err != nil {
			return err
		}
	}
	return nil
}

func validateRule(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, dir string, i int, peerKey string) error {
	for j, pr := range peers {
		at := []any{"spec", dir, i, peerKey, j}
		if pr.IPBlock != nil && (pr.PodSelector != nil || pr.NamespaceSelector != nil) {
			return perr("ipBlock cannot be combined with podSelector or namespaceSelector", at...)
		}
		if pr.IPBlock == nil && pr.PodSelector == nil && pr.NamespaceSelector == nil {
			return perr("a peer needs podSelector, namespaceSelector or ipBlock", at...)
		}
		for _, sel := range []*metav1.LabelSelector{pr.PodSelector, pr.NamespaceSelector} {
			if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
				return perr("selector: "+err.Error(), at...)
			}
		}
		if b := pr.IPBlock; b != nil {
			cidr, err := netip.ParsePrefix(b.CIDR)
			if err != nil {
				return perr(fmt.Sprintf("ipBlock.cidr %q is not a CIDR", b.CIDR), append(at, "ipBlock", "cidr")...)
			}
			for k, ex := range b.Except {
				e, err := netip.ParsePrefix(ex)
				if err != nil || !cidr.Contains(e.Addr()) || e.Bits() < cidr.Bits() {
					return perr(fmt.Sprintf("ipBlock.except %q is not a CIDR inside %s", ex, b.CIDR), append(at, "ipBlock", "except", k)...)
				}
			}
		}
	}
	for j, pt := range ports {
		at := []any{"spec", dir, i, "ports", j}
		if pt.Protocol != nil && *pt.Protocol != corev1.ProtocolTCP && *pt.Protocol != corev1.ProtocolUDP && *pt.Protocol != corev1.ProtocolSCTP {
			return perr(fmt.Sprintf("protocol %q: want TCP, UDP or SCTP", *pt.Protocol), append(at, "protocol")...)
		}
		if pt.Port != nil && pt.Port.Type == intstr.Int && (pt.Port.IntVal < 1 || pt.Port.IntVal > 65535) {
			return perr(fmt.Sprintf("port %d: want 1 to 65535", pt.Port.IntVal), append(at, "port")...)
		}
		if pt.EndPort != nil {
			if pt.Port == nil || pt.Port.Type != intstr.Int {
				return perr("endPort needs a numeric port", append(at, "endPort")...)
			}
			if *pt.EndPort < pt.Port.IntVal || *pt.EndPort > 65535 {
				return perr(fmt.Sprintf("endPort %d must be from port %d to 65535", *pt.EndPort, pt.Port.IntVal), append(at, "endPort")...)
			}
		}
	}
	return nil
}

// AllowList is a declared allow-list: flows matching no rule violate it.
type AllowList struct {
	Default string      `json:"default"` // "deny" (the only mode)
	Rules   []AllowRule `json:"rules"`
}

// AllowRule allows flows from nodes matching From to nodes matching To (node ids, `*` matches
// any run of characters) on Ports (empty: any).
type AllowRule struct {
	From  string   `json:"from"`
	To    string   `json:"to"`
	Ports []uint16 `json:"ports,omitempty"`
	Line  int      `json:"line,omitempty"`
}

// ParseAllowList reads an allow-list:
//
//	default: deny
//	rules:
//	  - from: shop/*
//	    to: shop/db
//	    ports: [5432]
//	  - "shop/web -> shop/api:8080"
func ParseAllowList(file string, data []byte) (AllowList, error) {
	al := AllowList{Default: "deny"}
	docs, err := specfile.Documents(file, data)
	if err != nil {
		return al, err
	}
	if len(docs) != 1 {
		return al, &specfile.Error{File: file, Line: 1, Column: 1, Msg: "expected one YAML document with default and rules"}
	}
	f, err := specfile.Fields(file, docs[0], "default", "rules")
	if err != nil {
		return al, err
	}
	if d, ok := f["default"]; ok && d.Value != "deny" {
		return al, specfile.At(file, d, "default %q: only deny is supported (rules list what is allowed)", d.Value)
	}
	rules, ok := f["rules"]
	if !ok || rules.Kind != yaml.SequenceNode {
		return al, specfile.At(file, docs[0], "expected rules: a list of allowed paths")
	}
	for _, r := range rules.Content {
		rule, err := allowRule(file, r)
		if err != nil {
			return al, err
		}
		al.Rules = append(al.Rules, rule)
	}
	return al, nil
}

func allowRule(file string, n *yaml.Node) (AllowRule, error) {
	if n.Kind == yaml.ScalarNode {
		p, err := specfile.PathNode(file, n, true)
		if err != nil {
			return AllowRule{}, err
		}
		r := AllowRule{From: p.From, To: p.To, Line: p.Line}
		if p.Port != 0 {
			r.Ports = []uint16{p.Port}
		}
		return r, nil
	}
	f, err := specfile.Fields(file, n, "from", "to", "ports")
	if err != nil {
		return AllowRule{}, err
	}
	r := AllowRule{Line: n.Line}
	for key, dst := range map[string]*string{"from": &r.From, "to": &r.To} {
		v, ok := f[key]
		if !ok || v.Kind != yaml.ScalarNode || v.Value == "" {
			return r, specfile.At(file, n, "rule needs %q", key)
		}
		*dst = v.Value
	}
	if ps, ok := f["ports"]; ok {
		if ps.Kind != yaml.SequenceNode {
			return r, specfile.At(file, ps, "ports must be a list of port numbers")
		}
		for _, pn := range ps.Content {
			port, err := strconv.ParseUint(pn.Value, 10, 16)
			if err != nil || port == 0 {
				return r, specfile.At(file, pn, "bad port %q: want 1 to 65535", pn.Value)
			}
			r.Ports = append(r.Ports, uint16(port))
		}
	}
	return r, nil
}

// Glob reports whether name matches pattern, where * matches any run of characters.
func Glob(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return strings.HasSuffix(name, parts[len(parts)-1])
}

// Allows reports whether a rule of the list allows from → to:port, and which.
func (a AllowList) Allows(from, to string, port uint16) bool {
	for _, r := range a.Rules {
		if !Glob(r.From, from) || !Glob(r.To, to) {
			continue
		}
		if len(r.Ports) == 0 {
			return true
		}
		for _, p := range r.Ports {
			if p == port {
				return true
			}
		}
	}
	return false
}
