package kubesource

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/flowscope/flowscope/internal/collector/kube/kubetest"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/policy"
	"github.com/flowscope/flowscope/internal/store"
)

func pod(ns, name, app string, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "example", Ports: ports}}},
	}
}

// writeKubeconfig writes a kubeconfig for the test server, as a user would have one.
func writeKubeconfig(t *testing.T, srv *kubetest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: " + srv.Config.Host +
		"\n    insecure-skip-tls-verify: true\nusers:\n- name: admin\n  user:\n    token: " + srv.Config.BearerToken +
		"\ncontexts:\n- name: test\n  context: {cluster: test, user: admin}\ncurrent-context: test\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReadFromRealAPIServer creates namespaces, pods and NetworkPolicies in a real
// kube-apiserver, reads them back through a kubeconfig (in pages) and evaluates flows with
// them: namespace labels and named container ports resolve end to end.
func TestReadFromRealAPIServer(t *testing.T) {
	srv := kubetest.Start(t)
	ctx := t.Context()
	c := srv.Client
	for ns, team := range map[string]string{"shop": "a", "pay": "b"} {
		_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"team": team}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	pods := []*corev1.Pod{
		pod("shop", "api-0", "api", corev1.ContainerPort{Name: "http", ContainerPort: 8080}, corev1.ContainerPort{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolUDP}),
		pod("shop", "api-1", "api", corev1.ContainerPort{Name: "http", ContainerPort: 8081, Protocol: corev1.ProtocolTCP}),
		pod("shop", "web-0", "web"),
		pod("pay", "gw-0", "gw"),
	}
	for _, p := range pods {
		if _, err := c.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	http := intstr.FromString("http")
	policies := []*networkingv1.NetworkPolicy{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api-from-pay"}, Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &http}},
			}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "pay", Name: "default-deny"}, Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "allow-web"}, Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{}}}},
	}
	for _, p := range policies {
		if _, err := c.NetworkingV1().NetworkPolicies(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	cfg, err := RestConfig(writeKubeconfig(t, srv), "")
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := pageSize
	pageSize = 2 // read in pages, as a large cluster is
	t.Cleanup(func() { pageSize = old })
	snap, err := Read(ctx, client)
	if err != nil {
		t.Fatal(err)
	}

	var names []string
	for _, p := range snap.Policies {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	if diff := cmp.Diff([]string{"pay/default-deny", "shop/allow-web", "shop/api-from-pay"}, names); diff != "" {
		t.Errorf("policies (-want +got):\n%s", diff)
	}
	labels := map[string]string{}
	for _, n := range snap.Namespaces {
		labels[n.Name] = n.Labels["team"]
	}
	if labels["shop"] != "a" || labels["pay"] != "b" {
		t.Errorf("namespace labels: %v", snap.Namespaces)
	}
	wantPorts := map[string]map[string]int32{"shop/pod/api-0": {"http": 8080}, "shop/pod/api-1": {"http": 8081}}
	if diff := cmp.Diff(wantPorts, snap.NamedPorts); diff != "" {
		t.Errorf("named ports (-want +got):\n%s", diff)
	}

	// The snapshot drives an audit of observed flows.
	ep := func(ns, wl, podName string) flow.Endpoint {
		return flow.Endpoint{Kind: flow.EndpointPod, Namespace: ns, Workload: wl, Pod: podName, Labels: map[string]string{"app": wl}, Addr: netip.MustParseAddr("10.0.0.1")}
	}
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	group := func(client, server flow.Endpoint, port uint16) store.FlowGroup {
		server.Port = port
		return store.FlowGroup{Client: client, Server: server, Flows: 1, First: at, Last: at}
	}
	groups := []store.FlowGroup{
		group(ep("pay", "gw", "gw-0"), ep("shop", "api", "api-0"), 8080),    // allowed: http of api-0
		group(ep("pay", "gw", "gw-0"), ep("shop", "api", "api-1"), 8081),    // allowed: http of api-1
		group(ep("pay", "gw", "gw-0"), ep("shop", "api", "api-1"), 8080),    // denied: api-1's http is 8081
		group(ep("pay", "gw", "gw-0"), ep("shop", "api", "api-0"), 9090),    // denied: metrics is UDP
		group(ep("shop", "web", "web-0"), ep("shop", "api", "api-0"), 8080), // denied: shop is team a
		group(ep("shop", "api", "api-0"), ep("pay", "gw", "gw-0"), 443),     // denied: default deny in pay
		group(ep("pay", "gw", "gw-0"), ep("shop", "web", "web-0"), 80),      // allowed by allow-web
	}
	vs, err := policy.Audit(groups, policy.Request{Policies: snap.Policies, Namespaces: snap.Namespaces, NamedPorts: snap.NamedPorts})
	if err != nil {
		t.Fatal(err)
	}
	type denied struct {
		client, server string
		port           uint16
	}
	var got []denied
	for _, v := range vs {
		got = append(got, denied{v.Client.Name(), v.Server.Name(), v.Port})
	}
	want := []denied{{"pay/gw", "shop/api", 8080}, {"pay/gw", "shop/api", 9090}, {"shop/api", "pay/gw", 443}, {"shop/web", "shop/api", 8080}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(denied{})); diff != "" {
		t.Errorf("violations (-want +got):\n%s\n%+v", diff, vs)
	}
}

// TestRestConfigErrors says which file could not be read.
func TestRestConfigErrors(t *testing.T) {
	_, err := RestConfig(filepath.Join(t.TempDir(), "missing"), "")
	if err == nil {
		t.Fatal("no error for a missing kubeconfig")
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	t.Setenv("HOME", t.TempDir())
	if _, err := RestConfig("", ""); err == nil {
		t.Fatal("no error without any configuration")
	}
}
