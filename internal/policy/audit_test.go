package policy

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/store"
)

func podEnd(ns, wl, pod string, port uint16) flow.Endpoint {
	return flow.Endpoint{Kind: flow.EndpointPod, Namespace: ns, Workload: wl, Pod: pod, Port: port,
		Labels: map[string]string{"app": wl}, Addr: netip.MustParseAddr("10.0.0.9")}
}

func flowGroup(client, server flow.Endpoint) store.FlowGroup {
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	return store.FlowGroup{Client: client, Server: server, Flows: 1, Bytes: 10, First: at, Last: at}
}

// TestNamedPortsPerPod: a pod's own named ports win over its workload's, so pods of one
// workload that number a port differently are each judged by their own.
func TestNamedPortsPerPod(t *testing.T) {
	ps, err := ParsePolicies("p.yaml", []byte(pol("api", "shop", "  podSelector: {matchLabels: {app: api}}\n  ingress:\n  - ports:\n    - port: http\n")))
	if err != nil {
		t.Fatal(err)
	}
	web := podEnd("shop", "web", "web-0", 0)
	groups := []store.FlowGroup{
		flowGroup(web, podEnd("shop", "api", "api-0", 8080)), // api-0: http is 8080 (its own entry)
		flowGroup(web, podEnd("shop", "api", "api-1", 8080)), // api-1: http is 8081
		flowGroup(web, podEnd("shop", "api", "api-2", 8080)), // api-2: no entry, the workload's: 8080
	}
	req := Request{Policies: ps, NamedPorts: map[string]map[string]int32{
		PodKey("shop", "api-0"): {"http": 8080}, PodKey("shop", "api-1"): {"http": 8081}, "shop/api": {"http": 8080}}}
	var denied []string
	for _, g := range groups {
		if v := mustEvaluator(t, req).Allow(req.peer(g.Client), req.peer(g.Server), g.Server.Port); !v.Allowed {
			denied = append(denied, g.Server.Pod)
		}
	}
	if diff := cmp.Diff([]string{"api-1"}, denied); diff != "" {
		t.Errorf("denied pods (-want +got):\n%s", diff)
	}
}

func mustEvaluator(t *testing.T, req Request) *Evaluator {
	t.Helper()
	ev, err := req.evaluator()
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestWhatIfOverCurrentPolicies: proposed policies apply on top of the cluster's (replacing
// those of the same name); flows already blocked today are counted, not reported.
func TestWhatIfOverCurrentPolicies(t *testing.T) {
	parse := func(docs ...string) []networkingv1.NetworkPolicy {
		t.Helper()
		var out []networkingv1.NetworkPolicy
		for _, d := range docs {
			ps, err := ParsePolicies("p.yaml", []byte(d))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ps...)
		}
		return out
	}
	denyDB := pol("db", "shop", "  podSelector: {matchLabels: {app: db}}\n  policyTypes: [Ingress]\n")
	apiOnlyWeb := pol("api", "shop", "  podSelector: {matchLabels: {app: api}}\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {app: web}}\n")
	apiNobody := pol("api", "shop", "  podSelector: {matchLabels: {app: api}}\n  policyTypes: [Ingress]\n")
	web, mon, api, db := podEnd("shop", "web", "web-0", 0), podEnd("shop", "mon", "mon-0", 0), podEnd("shop", "api", "api-0", 8080), podEnd("shop", "db", "db-0", 5432)
	groups := []store.FlowGroup{flowGroup(web, api), flowGroup(mon, api), flowGroup(api, db)}
	blocked, allowed, already, err := WhatIf(groups, Request{Current: parse(denyDB, apiOnlyWeb), Policies: parse(apiNobody)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range blocked {
		got = append(got, v.Client.Name()+" -> "+v.Server.Name())
	}
	// mon -> api is blocked today by the current "api" policy, which the proposal replaces.
	if diff := cmp.Diff([]string{"shop/web -> shop/api"}, got); diff != "" {
		t.Errorf("blocked (-want +got):\n%s", diff)
	}
	if allowed != 0 || already != 2 {
		t.Errorf("allowed %d, already blocked %d; want 0 and 2", allowed, already)
	}
}

// TestUnknownNamedPortSaysSo: a denial that a named port could have allowed, for a pod whose
// container ports were not given, says which name and pod; a pod known to lack the name does
// not get the hint.
func TestUnknownNamedPortSaysSo(t *testing.T) {
	ps, err := ParsePolicies("p.yaml", []byte(pol("api", "shop", "  podSelector: {matchLabels: {app: api}}\n  ingress:\n  - ports:\n    - port: http\n")))
	if err != nil {
		t.Fatal(err)
	}
	g := flowGroup(podEnd("shop", "web", "web-0", 0), podEnd("shop", "api", "api-0", 8080))
	for _, tc := range []struct {
		ports map[string]map[string]int32
		hint  bool
	}{{nil, true}, {map[string]map[string]int32{PodKey("shop", "api-0"): {"grpc": 9000}}, false}} {
		vs, err := Audit([]store.FlowGroup{g}, Request{Policies: ps, NamedPorts: tc.ports})
		if err != nil || len(vs) != 1 {
			t.Fatalf("violations %v, %v", vs, err)
		}
		if got := strings.Contains(vs[0].Reason, `named port "http" unknown for shop/api`); got != tc.hint {
			t.Errorf("ports %v: reason %q, hint %v, want %v", tc.ports, vs[0].Reason, got, tc.hint)
		}
	}
}

func TestParsePodPorts(t *testing.T) {
	got, err := ParsePodPorts("pods.yaml", []byte(`apiVersion: v1
kind: PodList
items:
- kind: Pod
  metadata: {name: a, namespace: x}
  spec:
    initContainers:
    - {name: proxy, ports: [{name: admin, containerPort: 15000}]}
    containers:
    - {name: app, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 53, protocol: UDP}, {containerPort: 9}]}
- kind: Pod
  metadata: {name: b}
  spec: {containers: [{name: app}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int32{"x/pod/a": {"http": 8080, "admin": 15000}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("named ports (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"kind: Service\n", "kind: Pod\nmetadata: {}\n", "kind: List\nitems: 3\n", "- a\n"} {
		if _, err := ParsePodPorts("pods.yaml", []byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "pods.yaml:") {
			t.Errorf("%q: error %v, want one naming the file and position", bad, err)
		}
	}
}
