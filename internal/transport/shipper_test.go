package transport_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowscope/flowscope/internal/transport"
)

func netipAddr(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }

func TestDeliversOverEachTransport(t *testing.T) {
	for _, tr := range []string{transport.GRPC, transport.HTTPS, transport.UDP} {
		t.Run(tr, func(t *testing.T) {
			snk := newSink()
			in := startCollector(t, collectorConfig(t), snk)
			s, _ := startShipper(t, shipperConfig(t, in.Addrs(), tr))
			for i := range 10 {
				s.Write(records(i*300, 300))
				time.Sleep(5 * time.Millisecond)
			}
			snk.waitTotal(t, 3000, 20*time.Second)
			if d, tot := snk.count(); d != 3000 || tot != 3000 {
				t.Errorf("got %d distinct of %d flows", d, tot)
			}
			if st := s.Stats(); st.Transport != tr || st.RecordsDropped != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestTLSMutualAndToken(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t, dir, "")
	other := newPKI(t, dir, "other-")
	tokenFile, wrongToken := filepath.Join(dir, "token"), filepath.Join(dir, "wrong")
	os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600)
	os.WriteFile(wrongToken, []byte("guess\n"), 0o600)

	cc := collectorConfig(t)
	cc.UDPListen = ""
	cc.InsecurePlaintext = false
	cc.TLSCert, cc.TLSKey, cc.ClientCA, cc.TokenFile = pki.serverCert, pki.serverKey, pki.caFile, tokenFile
	snk := newSink()
	in := startCollector(t, cc, snk)

	cases := []struct {
		name      string
		tr        string
		mutate    func(*transport.Config)
		delivered bool
	}{
		{"grpc good", transport.GRPC, func(*transport.Config) {}, true},
		{"https good", transport.HTTPS, func(*transport.Config) {}, true},
		{"grpc wrong token", transport.GRPC, func(c *transport.Config) { c.TokenFile = wrongToken }, false},
		{"https wrong token", transport.HTTPS, func(c *transport.Config) { c.TokenFile = wrongToken }, false},
		{"grpc client cert from another CA", transport.GRPC, func(c *transport.Config) { c.ClientCert, c.ClientKey = other.clientCert, other.clientKey }, false},
		{"https no client cert", transport.HTTPS, func(c *transport.Config) { c.ClientCert, c.ClientKey = "", "" }, false},
		{"grpc server not trusted", transport.GRPC, func(c *transport.Config) { c.CA = other.caFile }, false},
		{"https plaintext to TLS", transport.HTTPS, func(c *transport.Config) { c.InsecurePlaintext, c.CA, c.ClientCert, c.ClientKey = true, "", "", "" }, false},
	}
	want := 0
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := shipperConfig(t, in.Addrs(), tc.tr)
			cfg.InsecurePlaintext = false
			cfg.CA, cfg.ClientCert, cfg.ClientKey, cfg.TokenFile = pki.caFile, pki.clientCert, pki.clientKey, tokenFile
			tc.mutate(&cfg)
			s, reg := startShipper(t, cfg)
			s.Write(records(i*1000, 100))
			if tc.delivered {
				want += 100
				snk.waitTotal(t, want, 10*time.Second)
				return
			}
			time.Sleep(500 * time.Millisecond)
			if _, tot := snk.count(); tot != want {
				t.Fatalf("collector accepted flows from a bad exporter: %d, want %d", tot, want)
			}
			if n := testutil.ToFloat64(mustCounter(t, reg, "flowscope_transport_send_failures_total")); n == 0 {
				t.Errorf("no failed delivery counted")
			}
		})
	}
}
