package policy

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/testgate"
)

// kubeBin is where .ci/setup.d/50-kube.sh puts kube-apiserver and etcd.
func kubeBin() string {
	if d := os.Getenv("FLOWSCOPE_KUBE_BIN"); d != "" {
		return d
	}
	return "/var/cache/flowscope/kube/bin"
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startProcess(t *testing.T, log string, bin string, args ...string) {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); f.Close() })
}

type kubeAPI struct {
	url, token string
	client     *http.Client
}

func (k *kubeAPI) do(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, k.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+k.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, nil
}

// startKube starts etcd and a real kube-apiserver on loopback.
func startKube(t *testing.T) *kubeAPI {
	t.Helper()
	bin := kubeBin()
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			testgate.Services(t, b+" not in "+bin+" (.ci/setup.d/50-kube.sh builds it)")
		}
	}
	dir := t.TempDir()
	etcdPort, peerPort, apiPort := freePort(t), freePort(t), freePort(t)
	startProcess(t, filepath.Join(dir, "etcd.log"), filepath.Join(bin, "etcd"), "--data-dir="+filepath.Join(dir, "etcd"),
		fmt.Sprintf("--listen-client-urls=http://127.0.0.1:%d", etcdPort), fmt.Sprintf("--advertise-client-urls=http://127.0.0.1:%d", etcdPort),
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", peerPort), fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", peerPort),
		fmt.Sprintf("--initial-cluster=default=http://127.0.0.1:%d", peerPort))
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600))
	must(os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600))
	const token = "flowscope-policy-test"
	must(os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(token+",admin,admin,system:masters\n"), 0o600))
	startProcess(t, filepath.Join(dir, "apiserver.log"), filepath.Join(bin, "kube-apiserver"),
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdPort), "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", apiPort), "--cert-dir="+filepath.Join(dir, "certs"), "--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC", "--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"), "--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/24", "--disable-admission-plugins=ServiceAccount", "--allow-privileged=true", "--endpoint-reconciler-type=none")
	k := &kubeAPI{url: fmt.Sprintf("https://127.0.0.1:%d", apiPort), token: token,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if code, _, err := k.do("GET", "/readyz", nil); err == nil && code == 200 {
			return k
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "apiserver.log"))
			t.Fatalf("kube-apiserver not ready in 90s:\n%s", tail(string(log), 3000))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestRecommendationsAcceptedByRealAPIServer submits every recommended policy to a real
// kube-apiserver (server-side dry run): the API server's own validation must accept them.
func TestRecommendationsAcceptedByRealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	k := startKube(t)
	rec := Recommend(groupsOf(t), nil)
	nss := map[string]bool{}
	for _, p := range rec.Policies {
		if !nss[p.Namespace] {
			nss[p.Namespace] = true
			code, body, err := k.do("POST", "/api/v1/namespaces", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]string{"name": p.Namespace}})
			if err != nil || code != http.StatusCreated {
				t.Fatalf("creating namespace %s: %d %s %v", p.Namespace, code, body, err)
			}
		}
		code, body, err := k.do("POST", "/apis/networking.k8s.io/v1/namespaces/"+p.Namespace+"/networkpolicies?dryRun=All&fieldValidation=Strict", p)
		if err != nil || code != http.StatusCreated {
			t.Errorf("kube-apiserver refused %s/%s: %d %s %v", p.Namespace, p.Name, code, body, err)
		}
	}
	// And the API server refuses what our parser refuses.
	bad := map[string]any{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": map[string]string{"name": "bad"},
		"spec": map[string]any{"podSelector": map[string]any{}, "ingress": []any{map[string]any{"from": []any{map[string]any{"ipBlock": map[string]any{"cidr": "10.0.0.0/8", "except": []string{"192.168.0.0/16"}}}}}}}}
	code, body, _ := k.do("POST", "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies?dryRun=All", bad)
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "except") {
		t.Errorf("kube-apiserver accepted an except outside the cidr: %d %s", code, body)
	}
}
