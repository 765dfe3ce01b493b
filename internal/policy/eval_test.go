package policy

import (
	"net/netip"
	"strings"
	"testing"
)

var (
	web   = Peer{Pod: true, Namespace: "shop", Labels: map[string]string{"app": "web"}, Name: "shop/web", Addr: netip.MustParseAddr("10.244.0.5")}
	api   = Peer{Pod: true, Namespace: "shop", Labels: map[string]string{"app": "api", "tier": "backend"}, Name: "shop/api", NamedPorts: map[string]int32{"http": 8080}}
	db    = Peer{Pod: true, Namespace: "shop", Labels: map[string]string{"app": "db"}, Name: "shop/db", NamedPorts: map[string]int32{"pg": 5432}}
	gw    = Peer{Pod: true, Namespace: "pay", Labels: map[string]string{"app": "gw"}, Name: "pay/gw"}
	payWb = Peer{Pod: true, Namespace: "pay", Labels: map[string]string{"app": "web"}, Name: "pay/web"}
	mon   = Peer{Pod: true, Namespace: "ops", Labels: map[string]string{"app": "mon"}, Name: "ops/mon"}
	ext1  = Peer{Addr: netip.MustParseAddr("10.1.2.3"), Name: "network/corp"}
	ext2  = Peer{Addr: netip.MustParseAddr("10.0.5.5"), Name: "network/lab"}
	inet  = Peer{Addr: netip.MustParseAddr("203.0.113.7"), Name: "network/internet"}
	node  = Peer{Addr: netip.MustParseAddr("192.168.1.10"), Name: "node/n1"}
	ext6  = Peer{Addr: netip.MustParseAddr("2001:db8::7"), Name: "network/v6"}
)

var nsLabels = map[string]map[string]string{"shop": {"team": "a"}, "pay": {"team": "b"}, "ops": {"team": "ops"}}

const header = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n"

func pol(name, ns, spec string) string {
	return strings.Replace(strings.Replace(header, "%s", name, 1), "%s", ns, 1) + spec
}

// TestNetworkPolicySemantics checks evaluation against networking.k8s.io/v1 semantics.
func TestNetworkPolicySemantics(t *testing.T) {
	denyIngressShop := pol("deny-in", "shop", "  podSelector: {}\n  policyTypes: [Ingress]\n")
	denyEgressShop := pol("deny-out", "shop", "  podSelector: {}\n  policyTypes: [Egress]\n")
	type flowCase struct {
		client, server Peer
		port           uint16
		allowed        bool
	}
	tests := []struct {
		name     string
		policies []string
		flows    []flowCase
	}{
		{"no policy allows everything", nil, []flowCase{{web, api, 8080, true}, {inet, db, 5432, true}}},
		{"default deny ingress isolates its namespace only", []string{denyIngressShop}, []flowCase{
			{web, api, 8080, false}, {gw, api, 8080, false}, {inet, db, 5432, false}, {web, gw, 443, true}, {gw, mon, 80, true}}},
		{"default deny egress", []string{denyEgressShop}, []flowCase{
			{web, gw, 443, false}, {web, api, 8080, false}, {gw, api, 8080, true}}},
		{"podSelector peer is in the policy's namespace", []string{pol("api", "shop",
			"  podSelector: {matchLabels: {app: api}}\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {app: web}}\n    ports:\n    - port: 8080\n")},
			[]flowCase{{web, api, 8080, true}, {web, api, 9090, false}, {payWb, api, 8080, false}, {gw, api, 8080, false}, {gw, db, 5432, true}}},
		{"namespaceSelector alone selects every pod of those namespaces", []string{pol("api", "shop",
			"  podSelector: {matchLabels: {app: api}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {team: b}}\n")},
			[]flowCase{{gw, api, 8080, true}, {payWb, api, 1, true}, {web, api, 8080, false}, {mon, api, 8080, false}}},
		{"namespaceSelector and podSelector in one peer are ANDed", []string{pol("api", "shop",
			"  podSelector: {matchLabels: {app: api}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {team: b}}\n      podSelector: {matchLabels: {app: gw}}\n")},
			[]flowCase{{gw, api, 8080, true}, {payWb, api, 8080, false}, {web, api, 8080, false}}},
		{"separate peers are ORed", []string{pol("api", "shop",
			"  podSelector: {matchLabels: {app: api}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {team: b}}\n    - podSelector: {matchLabels: {app: web}}\n")},
			[]flowCase{{gw, api, 8080, true}, {web, api, 8080, true}, {mon, api, 8080, false}}},
		{"namespaceSelector on the automatic name label", []string{pol("api", "shop",
			"  podSelector: {}\n  ingress:\n  - from:\n    - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [ops]}]}\n")},
			[]flowCase{{mon, api, 8080, true}, {gw, api, 8080, false}}},
		{"ipBlock with except", []string{pol("db", "shop",
			"  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/8, except: [10.0.5.0/24]}\n")},
			[]flowCase{{ext1, db, 5432, true}, {ext2, db, 5432, false}, {inet, db, 5432, false}, {ext6, db, 5432, false}}},
		{"ipBlock IPv6", []string{pol("db", "shop",
			"  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from:\n    - ipBlock: {cidr: '2001:db8::/32'}\n")},
			[]flowCase{{ext6, db, 5432, true}, {ext1, db, 5432, false}}},
		{"selectors never match addresses outside the cluster", []string{pol("db", "shop",
			"  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from:\n    - namespaceSelector: {}\n")},
			[]flowCase{{mon, db, 5432, true}, {inet, db, 5432, false}, {node, db, 5432, false}}},
		{"host network client matches by ipBlock", []string{pol("api", "shop",
			"  podSelector: {matchLabels: {app: api}}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 192.168.0.0/16}\n")},
			[]flowCase{{node, api, 8080, true}, {web, api, 8080, false}}},
		{"named port resolves on the selected pod", []string{pol("api", "shop",
			"  podSelector: {matchLabels: {tier: backend}}\n  ingress:\n  - ports:\n    - port: http\n")},
			[]flowCase{{web, api, 8080, true}, {web, api, 9090, false}}},
		{"egress named port resolves on the destination", []string{pol("web", "shop",
			"  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Egress]\n  egress:\n  - ports:\n    - port: pg\n")},
			[]flowCase{{web, db, 5432, true}, {web, api, 5432, false}, {web, db, 5433, false}}},
		{"an unknown port name matches nothing", []string{pol("api", "shop",
			"  podSelector: {matchLabels: {tier: backend}}\n  ingress:\n  - ports:\n    - port: grpc\n")},
			[]flowCase{{web, api, 8080, false}, {web, api, 9090, false}}},
		{"named and numbered ports in one rule", []string{pol("api", "shop",
			"  podSelector: {matchLabels: {tier: backend}}\n  ingress:\n  - ports:\n    - port: http\n    - port: 9000\n")},
			[]flowCase{{web, api, 8080, true}, {web, api, 9000, true}, {web, api, 9090, false}}},
		{"an egress named port never matches a destination outside the cluster", []string{pol("web", "shop",
			"  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - ipBlock: {cidr: 0.0.0.0/0}\n    ports:\n    - port: http\n")},
			[]flowCase{{web, inet, 8080, false}, {web, api, 8080, false}}},
		{"an ingress named port is the selected pod's, not the client's", []string{pol("db", "shop",
			"  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - ports:\n    - port: http\n")},
			[]flowCase{{api, db, 8080, false}, {web, db, 5432, false}}},
		{"port range with endPort", []string{pol("api", "shop",
			"  podSelector: {matchLabels: {app: api}}\n  ingress:\n  - ports:\n    - {protocol: TCP, port: 8000, endPort: 8100}\n")},
			[]flowCase{{web, api, 8000, true}, {web, api, 8080, true}, {web, api, 8100, true}, {web, api, 8101, false}, {web, api, 7999, false}}},
		{"a UDP-only port does not allow TCP", []string{pol("api", "shop",
			"  podSelector: {matchLabels: {app: api}}\n  ingress:\n  - ports:\n    - {protocol: UDP, port: 8080}\n")},
			[]flowCase{{web, api, 8080, false}}},
		{"a port entry without port allows every TCP port", []string{pol("api", "shop",
			"  podSelector: {matchLabels: {app: api}}\n  ingress:\n  - ports:\n    - protocol: TCP\n")},
			[]flowCase{{web, api, 1, true}, {inet, api, 65535, true}}},
		{"an empty rule allows all", []string{pol("api", "shop", "  podSelector: {}\n  ingress:\n  - {}\n")},
			[]flowCase{{inet, api, 8080, true}, {gw, db, 1, true}}},
		{"policyTypes omitted: egress rules make it an egress policy too, and ingress is isolated", []string{pol("web", "shop",
			"  podSelector: {matchLabels: {app: web}}\n  egress:\n  - to:\n    - podSelector: {matchLabels: {app: db}}\n")},
			[]flowCase{{web, db, 5432, true}, {web, api, 8080, false}, {api, web, 80, false}, {api, db, 5432, true}}},
		{"policyTypes Egress only leaves ingress open", []string{pol("web", "shop",
			"  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Egress]\n")},
			[]flowCase{{api, web, 80, true}, {web, api, 8080, false}}},
		{"policies add up", []string{
			pol("from-web", "shop", "  podSelector: {matchLabels: {app: api}}\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {app: web}}\n"),
			pol("from-pay", "shop", "  podSelector: {matchLabels: {app: api}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {team: b}}\n")},
			[]flowCase{{web, api, 8080, true}, {gw, api, 8080, true}, {mon, api, 8080, false}}},
		{"both ends must allow", []string{denyIngressShop, pol("web-out", "shop",
			"  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - podSelector: {matchLabels: {app: api}}\n")},
			[]flowCase{{web, api, 8080, false}, {web, gw, 443, false}}},
		{"matchExpressions NotIn and Exists", []string{pol("x", "shop",
			"  podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [db]}]}\n  ingress:\n  - from:\n    - podSelector: {matchExpressions: [{key: app, operator: Exists}]}\n")},
			[]flowCase{{web, api, 8080, true}, {gw, api, 8080, false}, {gw, db, 5432, true}}},
		{"a policy of another namespace changes nothing", []string{pol("deny", "pay", "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n")},
			[]flowCase{{web, api, 8080, true}, {gw, api, 8080, false}, {web, gw, 443, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := ParsePolicies("test.yaml", []byte(strings.Join(tc.policies, "---\n")))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := NewEvaluator(ps, func(ns string) map[string]string { return nsLabels[ns] })
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.flows {
				v := ev.Allow(f.client, f.server, f.port)
				if v.Allowed != f.allowed {
					t.Errorf("%s -> %s:%d allowed=%v (%s), want %v", f.client.Name, f.server.Name, f.port, v.Allowed, v.Reason, f.allowed)
				}
				if !v.Allowed && v.Reason == "" {
					t.Errorf("%s -> %s:%d denied without a reason", f.client.Name, f.server.Name, f.port)
				}
			}
		})
	}
}
