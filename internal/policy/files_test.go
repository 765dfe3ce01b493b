package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/flowscope/flowscope/internal/flowgen"
	"github.com/flowscope/flowscope/internal/specfile"
	"github.com/flowscope/flowscope/internal/store"
)

func TestMalformedFilesNamePosition(t *testing.T) {
	tests := []struct {
		name, text, want string
		allow            bool
	}{
		{"tab", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n\tname: x\n", "p.yaml:4:1: found character that cannot start any token", false},
		{"unknown field", pol("x", "a", "  podSelector: {}\n  ingres:\n  - {}\n"), "p.yaml:8:3: unknown field \"ingres\"", false},
		{"bad cidr", pol("x", "a", "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/33}\n"), "p.yaml:10:23: ipBlock.cidr \"10.0.0.0/33\" is not a CIDR", false},
		{"except outside", pol("x", "a", "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n        cidr: 10.0.0.0/8\n        except: [11.0.0.0/24]\n"), "p.yaml:12:18: ipBlock.except \"11.0.0.0/24\" is not a CIDR inside 10.0.0.0/8", false},
		{"endPort with name", pol("x", "a", "  podSelector: {}\n  ingress:\n  - ports:\n    - port: http\n      endPort: 90\n"), "p.yaml:11:16: endPort needs a numeric port", false},
		{"wrong kind", "apiVersion: networking.k8s.io/v1\nkind: Pod\n", "p.yaml:2:7: kind \"Pod\": want NetworkPolicy", false},
		{"bad type", pol("x", "a", "  podSelector: {}\n  policyTypes: Ingress\n"), "p.yaml:8:3: spec.policyTypes: cannot be a string", false},
		{"bad policy type", pol("x", "a", "  podSelector: {}\n  policyTypes: [Ingress, Sideways]\n"), "p.yaml:8:26: policyTypes: \"Sideways\" is neither Ingress nor Egress", false},
		{"bad selector", pol("x", "a", "  podSelector: {matchExpressions: [{key: app, operator: Maybe}]}\n"), "p.yaml:7:16: podSelector:", false},
		{"allow bad port", "rules:\n  - from: a/*\n    to: b/c\n    ports: [80, http]\n", "p.yaml:4:17: bad port \"http\"", true},
		{"allow bad arrow", "rules:\n  - \"a/b => c/d:80\"\n", "p.yaml:2:5: \"a/b => c/d:80\" is not a path", true},
		{"allow unknown key", "default: deny\nrulez: []\n", "p.yaml:2:1: unknown field \"rulez\"", true},
		{"allow default allow", "default: allow\nrules: []\n", "p.yaml:1:10: default \"allow\": only deny", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.allow {
				_, err = ParseAllowList("p.yaml", []byte(tc.text))
			} else {
				_, err = ParsePolicies("p.yaml", []byte(tc.text))
			}
			var se *specfile.Error
			if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v, want one starting with %q", err, tc.want)
			}
		})
	}
}

func TestAllowListAudit(t *testing.T) {
	al, err := ParseAllowList("a.yaml", []byte("default: deny\nrules:\n  - from: ns0/*\n    to: ns1/*\n  - \"ns1/app0 -> ns2/app1:8080\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from, to string
		port     uint16
		want     bool
	}{{"ns0/app3", "ns1/app2", 1, true}, {"ns1/app0", "ns2/app1", 8080, true}, {"ns1/app0", "ns2/app1", 8081, false}, {"ns2/app0", "ns1/app2", 80, false}} {
		if got := al.Allows(c.from, c.to, c.port); got != c.want {
			t.Errorf("Allows(%s, %s, %d) = %v", c.from, c.to, c.port, got)
		}
	}
}

// groupsOf groups generated conns as the store's FlowGroups would.
func groupsOf(t *testing.T) []store.FlowGroup {
	t.Helper()
	conns := flowgen.New(flowgen.Small).Conns(time.Unix(0, 0), time.Hour, 5000)
	idx := map[string]int{}
	var out []store.FlowGroup
	for _, c := range conns {
		c.Client.Port = 0
		k := fmt.Sprintf("%v|%v|%d|%v", c.Client.Name(), c.Client.Addr, c.Server.Port, c.Server.Name()+c.Server.Addr.String())
		if i, ok := idx[k]; ok {
			out[i].Flows++
			continue
		}
		idx[k] = len(out)
		out = append(out, store.FlowGroup{Client: c.Client, Server: c.Server, Flows: 1})
	}
	return out
}

func TestRecommendedPoliciesParseAndBlockNothingObserved(t *testing.T) {
	groups := groupsOf(t)
	rec := Recommend(groups, nil)
	if len(rec.Policies) != 12 {
		t.Fatalf("%d policies, want one per workload (12); skipped %v", len(rec.Policies), rec.Skipped)
	}
	var docs []string
	for _, p := range rec.Policies {
		b, err := yaml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	parsed, err := ParsePolicies("recommended.yaml", []byte(strings.Join(docs, "---\n")))
	if err != nil {
		t.Fatalf("recommended policies do not parse as networking.k8s.io/v1: %v", err)
	}
	if diff := cmp.Diff(rec.Policies, parsed); diff != "" {
		t.Errorf("round trip through YAML changed the policies:\n%s", diff)
	}
	blocked, allowed, _, err := WhatIf(groups, Request{Policies: parsed})
	if err != nil {
		t.Fatal(err)
	}
	if len(blocked) > 0 {
		t.Fatalf("recommended policies block %d observed groups, e.g. %s -> %s:%d: %s", len(blocked), blocked[0].Client.Name(), blocked[0].Server.Name(), blocked[0].Port, blocked[0].Reason)
	}
	var total uint64
	for _, g := range groups {
		total += g.Flows
	}
	if allowed != total {
		t.Errorf("allowed %d flows of %d", allowed, total)
	}
	// Least privilege: a path never observed is blocked.
	unseen := groups[0]
	unseen.Server.Port = 31337
	if blocked, _, _, _ := WhatIf([]store.FlowGroup{unseen}, Request{Policies: parsed}); len(blocked) != 1 {
		t.Errorf("an unobserved port is not blocked by the recommendation")
	}
	var names []string
	for _, p := range parsed {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	sort.Strings(names)
	t.Log(names)
}
