package transport_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/collector/ingest"
	"github.com/flowscope/flowscope/internal/exporter/adapt"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/transport"
)

// sink is a consumer that counts every flow it gets by conn id.
type sink struct {
	mu    sync.Mutex
	flows map[uint64]int
	total int
}

func newSink() *sink         { return &sink{flows: map[uint64]int{}} }
func (s *sink) Name() string { return "sink" }
func (s *sink) Consume(_ context.Context, e ingest.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range e.Batch.Records {
		s.flows[r.ConnID]++
		s.total++
	}
	for _, a := range e.Batch.Aggregates {
		s.total += int(a.Flows)
	}
	return nil
}

func (s *sink) count() (distinct, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.flows), s.total
}

func (s *sink) waitTotal(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if _, tot := s.count(); tot >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	d, tot := s.count()
	t.Fatalf("collector got %d flows (%d distinct), want %d", tot, d, n)
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func collectorConfig(t *testing.T) ingest.Config {
	t.Helper()
	cfg := ingest.DefaultConfig()
	cfg.GRPCListen, cfg.HTTPSListen, cfg.UDPListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.SpoolDir = t.TempDir()
	cfg.InsecurePlaintext = true
	return cfg
}

func startCollector(t *testing.T, cfg ingest.Config, consumers ...ingest.Consumer) *ingest.Ingest {
	t.Helper()
	in, err := ingest.New(cfg, prometheus.NewRegistry(), quiet(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range consumers {
		in.AddConsumer(c)
	}
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Stop() })
	return in
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// shipperConfig points a shipper at the collector's bound addresses.
func shipperConfig(t *testing.T, a ingest.Addrs, tr string) transport.Config {
	t.Helper()
	cfg := transport.DefaultConfig()
	cfg.Transport = tr
	cfg.InsecurePlaintext = true
	cfg.ExporterID, cfg.NodeName = "node-test", "node-test"
	if a.GRPC != "" {
		cfg.GRPCPort = port(t, a.GRPC)
	}
	if a.HTTPS != "" {
		cfg.HTTPSPort = port(t, a.HTTPS)
	}
	if a.UDP != "" {
		cfg.UDPPort = port(t, a.UDP)
	}
	cfg.BatchSize, cfg.FlushInterval, cfg.BufferBytes = 500, 50*time.Millisecond, 16<<20
	cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	cfg.Instance = &adapt.Instance{NodeCores: 4, Cores: 4, MemoryBytes: 8 << 30, NodeMemory: 8 << 30}
	return cfg
}

func startShipper(t *testing.T, cfg transport.Config) (*transport.Shipper, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := transport.New(cfg, reg, quiet(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, reg
}

// records returns n records with conn ids from first, ending now.
func records(first, n int) []flow.Record {
	recs := make([]flow.Record, n)
	now := time.Now()
	for i := range recs {
		recs[i] = flow.Record{
			ConnID: uint64(first + i), Family: flow.IPv4, Direction: flow.Client, Outcome: flow.OK,
			LocalAddr: netipAddr(10, 0, 0, 1), RemoteAddr: netipAddr(10, 0, 0, 2), LocalPort: 40000, RemotePort: 80,
			Start: now.Add(-time.Millisecond), End: now, StartKnown: true, BytesSent: 100, CloseState: "FIN_WAIT2",
			Workload: flow.Workload{Kind: flow.KindHost},
		}
	}
	return recs
}

// testPKI writes a CA, a server certificate for 127.0.0.1 and a client certificate to dir.
type testPKI struct{ caFile, serverCert, serverKey, clientCert, clientKey string }

func newPKI(t *testing.T, dir, prefix string) testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: prefix + " test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := testPKI{caFile: filepath.Join(dir, prefix+"ca.pem")}
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: ips,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		c, k := filepath.Join(dir, prefix+name+".pem"), filepath.Join(dir, prefix+name+"-key.pem")
		writePEM(t, c, "CERTIFICATE", der)
		writePEM(t, k, "PRIVATE KEY", kder)
		return c, k
	}
	p.serverCert, p.serverKey = issue("server", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	p.clientCert, p.clientKey = issue("client", 3, x509.ExtKeyUsageClientAuth, nil)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
