// Package kubetest starts a real etcd and kube-apiserver on loopback for tests, from the
// binaries .ci/setup.d/50-kube.sh builds (FLOWSCOPE_KUBE_BIN, default
// /var/cache/flowscope/kube/bin). Without them a test is skipped locally and fails in CI
// (testgate.Services).
package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/flowscope/flowscope/internal/testgate"
)

// DefaultBin is where .ci/setup.d/50-kube.sh puts the binaries.
const DefaultBin = "/var/cache/flowscope/kube/bin"

// Server is a running kube-apiserver backed by its own etcd.
type Server struct {
	t      testing.TB
	dir    string
	bin    string
	port   int
	etcd   string
	api    *exec.Cmd
	Config *rest.Config
	Client kubernetes.Interface
}

// binDir returns the directory holding kube-apiserver and etcd, or skips/fails the test.
func binDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("FLOWSCOPE_KUBE_BIN")
	if dir == "" {
		dir = DefaultBin
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			testgate.Services(t, fmt.Sprintf("%s not found in %s (run .ci/setup.d/50-kube.sh or set FLOWSCOPE_KUBE_BIN)", b, dir))
		}
	}
	return dir
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs a command whose output goes to a log file in dir, stopped by PID at cleanup.
func start(t testing.TB, dir, name string, path string, args ...string) *exec.Cmd {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		logf.Close()
	})
	return cmd
}

// Start runs etcd and kube-apiserver in a temporary directory and returns once the API server
// is ready. Both are stopped by PID when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := binDir(t)
	dir := t.TempDir()
	s := &Server{t: t, dir: dir, bin: bin}
	client, peer := freePort(t), freePort(t)
	s.etcd = "http://127.0.0.1:" + strconv.Itoa(client)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
	start(t, dir, "etcd", filepath.Join(bin, "etcd"), "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", s.etcd, "--advertise-client-urls", s.etcd,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL, "--log-level", "warn")
	s.writeCredentials()
	s.port = freePort(t)
	s.StartAPI()
	host := "https://127.0.0.1:" + strconv.Itoa(s.port)
	s.Config = &rest.Config{Host: host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 500, Burst: 1000}
	c, err := kubernetes.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	s.Client = c
	s.waitReady(90 * time.Second)
	return s
}

const token = "flowscope-test-token"

func (s *Server) writeCredentials() {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		s.t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		s.t.Fatal(err)
	}
	files := map[string][]byte{
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"tokens.csv": []byte(token + ",admin,admin-uid,system:masters\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(s.dir, name), data, 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
}

// StartAPI (re)starts kube-apiserver on the same port and etcd (after StopAPI).
func (s *Server) StartAPI() {
	s.t.Helper()
	d := s.dir
	s.api = start(s.t, d, "kube-apiserver", filepath.Join(s.bin, "kube-apiserver"),
		"--etcd-servers="+s.etcd, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(s.port), "--cert-dir="+filepath.Join(d, "certs"),
		"--token-auth-file="+filepath.Join(d, "tokens.csv"), "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(d, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(d, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16", "--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true", "--endpoint-reconciler-type=none")
	if s.Client != nil {
		s.waitReady(90 * time.Second)
	}
}

// StopAPI kills kube-apiserver (etcd keeps running): the API server goes away.
func (s *Server) StopAPI() {
	_ = s.api.Process.Kill()
	_, _ = s.api.Process.Wait()
}

func (s *Server) waitReady(limit time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Config.Host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		tr, _ := rest.TransportFor(s.Config)
		resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Second}).Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			log, _ := os.ReadFile(filepath.Join(s.dir, "kube-apiserver.log"))
			if len(log) > 3000 {
				log = log[len(log)-3000:]
			}
			s.t.Fatalf("kube-apiserver not ready within %s: %v\n%s", limit, err, log)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
