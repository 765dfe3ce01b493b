package policy

import (
	"fmt"
	"sort"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/store"
)

// Namespace gives a namespace's labels for namespaceSelectors.
type Namespace struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Request is what audit and what-if evaluate observed flows against.
type Request struct {
	Allow    *AllowList                   `json:"allow,omitempty"`
	Policies []networkingv1.NetworkPolicy `json:"policies,omitempty"`
	// Current (what-if only) are the policies in force: the proposed Policies apply on top of
	// them (replacing those of the same namespace and name), and only flows that Current
	// allows and the result blocks are reported.
	Current    []networkingv1.NetworkPolicy `json:"current,omitempty"`
	Namespaces []Namespace                  `json:"namespaces,omitempty"`
	// NamedPorts gives container port numbers by name, for named ports in policies: keyed by
	// pod (PodKey) or by workload id (all its pods); a pod's own entry wins.
	NamedPorts map[string]map[string]int32 `json:"named_ports,omitempty"`
}

// PodKey is the NamedPorts key of a pod: "namespace/pod/name".
func PodKey(namespace, pod string) string { return namespace + "/pod/" + pod }

// Violation is a group of observed flows that a rule forbids.
type Violation struct {
	Client flow.Endpoint `json:"client"`
	Server flow.Endpoint `json:"server"`
	Port   uint16        `json:"port"`
	Flows  uint64        `json:"flows"`
	Bytes  uint64        `json:"bytes"`
	First  time.Time     `json:"first"`
	Last   time.Time     `json:"last"`
	Rule   string        `json:"rule"` // "allow-list" or "networkpolicy"
	Reason string        `json:"reason"`
	// Addresses counts the distinct addresses of the ends outside the cluster merged into
	// this violation (Client and Server show the first), when more than one.
	Addresses int `json:"addresses,omitempty"`
	addrs     map[[2]string]bool
}

func violation(g store.FlowGroup, rule, reason string) Violation {
	return Violation{Client: g.Client, Server: g.Server, Port: g.Server.Port, Flows: g.Flows, Bytes: g.Bytes, First: g.First, Last: g.Last, Rule: rule, Reason: reason}
}

func (r Request) evaluator() (*Evaluator, error) {
	ns := map[string]map[string]string{}
	for _, n := range r.Namespaces {
		ns[n.Name] = n.Labels
	}
	return NewEvaluator(r.Policies, func(name string) map[string]string { return ns[name] })
}

func (r Request) peer(e flow.Endpoint) Peer {
	p := PeerOf(e)
	if e.Kind != flow.EndpointPod {
		return p
	}
	if ports, ok := r.NamedPorts[PodKey(e.Namespace, e.Pod)]; ok && e.Pod != "" {
		p.NamedPorts = ports
	} else {
		p.NamedPorts = r.NamedPorts[e.Name()]
	}
	return p
}

// Audit returns the flow groups that violate the allow-list or the NetworkPolicies of req.
func Audit(groups []store.FlowGroup, req Request) ([]Violation, error) {
	ev, err := req.evaluator()
	if err != nil {
		return nil, err
	}
	out := []Violation{}
	for _, g := range groups {
		if req.Allow != nil && !req.Allow.Allows(g.Client.Name(), g.Server.Name(), g.Server.Port) {
			out = append(out, violation(g, "allow-list", fmt.Sprintf("no allow-list rule allows %s -> %s:%d", g.Client.Name(), g.Server.Name(), g.Server.Port)))
		}
		if len(req.Policies) > 0 {
			if v := ev.Allow(req.peer(g.Client), req.peer(g.Server), g.Server.Port); !v.Allowed {
				out = append(out, violation(g, "networkpolicy", v.Reason))
			}
		}
	}
	out = merge(out)
	sortViolations(out)
	return out, nil
}

// WhatIf returns the flow groups req.Policies would block, and how many flows they allow.
// With req.Current, the proposed policies are applied on top of the current ones, and flows
// the current policies already block are counted in alreadyBlocked instead of reported.
func WhatIf(groups []store.FlowGroup, req Request) (blocked []Violation, allowedFlows, alreadyBlocked uint64, err error) {
	req.Allow = nil
	var cur *Evaluator
	if len(req.Current) > 0 {
		now := req
		now.Policies = req.Current
		if cur, err = now.evaluator(); err != nil {
			return nil, 0, 0, fmt.Errorf("current policies: %w", err)
		}
		req.Policies = Overlay(req.Current, req.Policies)
	}
	ev, err := req.evaluator()
	if err != nil {
		return nil, 0, 0, err
	}
	blocked = []Violation{}
	for _, g := range groups {
		client, server := req.peer(g.Client), req.peer(g.Server)
		v := ev.Allow(client, server, g.Server.Port)
		switch {
		case v.Allowed:
			allowedFlows += g.Flows
		case cur != nil && !cur.Allow(client, server, g.Server.Port).Allowed:
			alreadyBlocked += g.Flows
		default:
			blocked = append(blocked, violation(g, "networkpolicy", v.Reason))
		}
	}
	blocked = merge(blocked)
	sortViolations(blocked)
	return blocked, allowedFlows, alreadyBlocked, nil
}

// Overlay applies proposed policies on top of current ones: a proposed policy replaces the
// current one of the same namespace and name, as kubectl apply would.
func Overlay(current, proposed []networkingv1.NetworkPolicy) []networkingv1.NetworkPolicy {
	replaced := map[string]bool{}
	for _, p := range proposed {
		replaced[p.Namespace+"/"+p.Name] = true
	}
	out := make([]networkingv1.NetworkPolicy, 0, len(current)+len(proposed))
	for _, p := range current {
		if !replaced[p.Namespace+"/"+p.Name] {
			out = append(out, p)
		}
	}
	return append(out, proposed...)
}

// merge folds violations of the same workloads, port, rule and reason (different pods of a
// workload, different addresses of a network or of unattributed ends: the verdict's reason
// names the rule that decided, so they were judged alike) into one, keeping the first
// endpoints as representatives.
func merge(vs []Violation) []Violation {
	idx := map[string]int{}
	out := vs[:0:0]
	for _, v := range vs {
		k := fmt.Sprintf("%s|%s|%d|%s|%s", v.Client.Name(), v.Server.Name(), v.Port, v.Rule, v.Reason)
		addr := [2]string{outsideAddr(v.Client), outsideAddr(v.Server)}
		i, ok := idx[k]
		if !ok {
			idx[k] = len(out)
			v.Client.Pod, v.Client.PodUID, v.Server.Pod, v.Server.PodUID = "", "", "", ""
			v.addrs = map[[2]string]bool{addr: true}
			out = append(out, v)
			continue
		}
		m := &out[i]
		m.addrs[addr] = true
		m.Flows += v.Flows
		m.Bytes += v.Bytes
		if v.First.Before(m.First) {
			m.First = v.First
		}
		if v.Last.After(m.Last) {
			m.Last = v.Last
		}
	}
	for i := range out {
		if n := len(out[i].addrs); n > 1 {
			out[i].Addresses = n
		}
		out[i].addrs = nil
	}
	return out
}

func outsideAddr(e flow.Endpoint) string {
	if e.Kind == flow.EndpointPod || !e.Addr.IsValid() {
		return ""
	}
	return e.Addr.String()
}

func sortViolations(v []Violation) {
	sort.SliceStable(v, func(i, j int) bool {
		a, b := v[i], v[j]
		if a.Flows != b.Flows {
			return a.Flows > b.Flows
		}
		if a.Client.Name() != b.Client.Name() {
			return a.Client.Name() < b.Client.Name()
		}
		if a.Server.Name() != b.Server.Name() {
			return a.Server.Name() < b.Server.Name()
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Rule < b.Rule
	})
}
