//go:build !noduckdb

package main

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flowscope/flowscope/internal/collector/kube/kubetest"
)

// TestPolicyFromClusterGolden reads NetworkPolicies, namespace labels and the pods' named
// ports from a real kube-apiserver (through a kubeconfig) and audits the fixed data set with
// them; a what-if applies a proposal on top of them.
func TestPolicyFromClusterGolden(t *testing.T) {
	srv := kubetest.Start(t)
	ctx, c := t.Context(), srv.Client
	for ns, team := range map[string]string{"ns0": "core", "ns1": "shop", "ns2": "shop"} {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"team": team}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// ns1/app1's pods serve port 8080 under the name http, as the flows show.
	for _, name := range []string{"app1-0", "app1-1"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: name, Labels: map[string]string{"app": "app1"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}
		if _, err := c.CoreV1().Pods("ns1").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	http := intstr.FromString("http")
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "app1-from-core"}, Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "app1"}},
		Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "core"}}}},
			Ports: []networkingv1.NetworkPolicyPort{{Port: &http}}}}}}
	if _, err := c.NetworkingV1().NetworkPolicies("ns1").Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster: {server: '" + srv.Config.Host + "', insecure-skip-tls-verify: true}\n" +
		"users:\n- name: u\n  user: {token: " + srv.Config.BearerToken + "}\ncontexts:\n- name: t\n  context: {cluster: t, user: u}\ncurrent-context: t\n"
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	url := queryServer(t)
	window := []string{"--from=-2h10m", "--to=-10m", "--kubeconfig=" + kubeconfig}
	with := func(args ...string) []string { return append(args, window...) }
	runGolden(t, url, []goldenCase{
		{"policy_audit_cluster", with("policy", "audit", "--from-cluster", "--namespace=ns1"), 0},
		{"policy_whatif_cluster", with("policy", "whatif", "--from-cluster", "-f=testdata/ns1-lockdown.yaml", "--namespace=ns1", "--limit=6"), 0},
		{"policy_audit_cluster_unreachable", []string{"policy", "audit", "--from-cluster", "--kubeconfig=testdata/missing-kubeconfig"}, 1},
	})
}
