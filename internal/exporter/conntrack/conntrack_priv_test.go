package conntrack

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/testgate"
	"github.com/flowscope/flowscope/internal/testnet"
)

// TestTranslatesADNATedClient: in a namespace of its own, an iptables DNAT rule sends a
// "Service VIP" to a backend in another namespace (what kube-proxy does); the client record
// of a connection to the VIP gets the backend from conntrack, a direct connection gets none.
func TestTranslatesADNATedClient(t *testing.T) {
	testgate.BPF(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatal("iptables is not installed (.ci/packages/exporter.txt installs it)")
	}
	p := testnet.NewPair(t, testnet.Options{Prefix: "fsct"})
	vip := netip.MustParseAddr("10.96.77.7")
	const vipPort, backendPort = 80, 8080
	if out, err := exec.Command("ip", "netns", "exec", p.A.Name, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
		"-d", vip.String(), "--dport", strconv.Itoa(vipPort), "-j", "DNAT", "--to-destination", netip.AddrPortFrom(testnet.AddrB4, backendPort).String()).CombinedOutput(); err != nil {
		t.Fatalf("iptables DNAT rule: %v: %s", err, out)
	}
	// The VIP needs a route out of A (kube-proxy's VIPs are routed by the default route).
	if out, err := exec.Command("ip", "-n", p.A.Name, "route", "add", vip.String()+"/32", "dev", p.A.Veth).CombinedOutput(); err != nil {
		t.Fatalf("route to the VIP: %v: %s", err, out)
	}
	backend(t, p.B, netip.AddrPortFrom(testnet.AddrB4, backendPort))
	dial := func(to netip.AddrPort) flow.Record {
		t.Helper()
		var c net.Conn
		if err := p.A.Do(func() (err error) {
			c, err = net.DialTimeout("tcp4", to.String(), 5*time.Second)
			return err
		}); err != nil {
			t.Fatalf("dialling %s: %v", to, err)
		}
		defer c.Close()
		local := c.LocalAddr().(*net.TCPAddr).AddrPort()
		return flow.Record{ConnID: uint64(local.Port()), Direction: flow.Client, Netns: p.A.Inum, Interim: true,
			LocalAddr: local.Addr(), LocalPort: local.Port(), RemoteAddr: to.Addr(), RemotePort: to.Port()}
	}
	recs := []flow.Record{
		dial(netip.AddrPortFrom(vip, vipPort)),
		dial(netip.AddrPortFrom(testnet.AddrB4, backendPort)),
	}
	var logs bytes.Buffer
	tr := New(Config{}, nil, time.Now, slog.New(slog.NewTextHandler(&logs, nil)))
	defer tr.Close()
	tr.Translate(recs, map[uint32]string{p.A.Inum: p.A.Path()})
	if got := netip.AddrPortFrom(recs[0].NatRemoteAddr, recs[0].NatRemotePort); got != netip.AddrPortFrom(testnet.AddrB4, backendPort) {
		t.Errorf("connection to the VIP: translation %s, want the backend %s:%d (stats %+v, log %s)", got, testnet.AddrB4, backendPort, tr.Stats(), logs.String())
	}
	if recs[1].NatRemoteAddr.IsValid() {
		t.Errorf("direct connection: translation %s, want none", recs[1].NatRemoteAddr)
	}
	// The final record of the translated connection reuses the interim's answer.
	final := recs[0]
	final.Interim, final.NatRemoteAddr, final.NatRemotePort = false, netip.Addr{}, 0
	lookups := tr.Stats().Lookups
	tr.Translate([]flow.Record{final}, map[uint32]string{p.A.Inum: p.A.Path()})
	if s := tr.Stats(); s.Lookups != lookups {
		t.Errorf("the final record was looked up again: %+v", s)
	}
	if logs.Len() > 0 {
		t.Errorf("unexpected log: %s", logs.String())
	}
}

// TestTranslatesInTheNodesNamespace is kube-proxy's topology: the client socket lives in a
// pod's namespace (B), the DNAT happens in the node's (A, where the Translator runs) on the
// way out of the pod. The node's table is asked first and names the backend.
func TestTranslatesInTheNodesNamespace(t *testing.T) {
	testgate.BPF(t)
	p := testnet.NewPair(t, testnet.Options{Prefix: "fsct"})
	vip := netip.MustParseAddr("10.96.88.8")
	const vipPort, backendPort = 443, 8443
	for _, cmd := range [][]string{
		{"ip", "netns", "exec", p.A.Name, "iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "-d", vip.String(), "--dport", strconv.Itoa(vipPort),
			"-j", "DNAT", "--to-destination", netip.AddrPortFrom(testnet.AddrA4, backendPort).String()},
		{"ip", "-n", p.B.Name, "route", "add", vip.String() + "/32", "via", testnet.AddrA4.String()}, // the pod's default route: the node
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", cmd, err, out)
		}
	}
	backend(t, p.A, netip.AddrPortFrom(testnet.AddrA4, backendPort))
	var c net.Conn
	if err := p.B.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", netip.AddrPortFrom(vip, vipPort).String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().(*net.TCPAddr).AddrPort()
	recs := []flow.Record{{ConnID: 1, Direction: flow.Client, Netns: p.B.Inum, LocalAddr: local.Addr(), LocalPort: local.Port(), RemoteAddr: vip, RemotePort: vipPort}}
	tr := New(Config{}, nil, time.Now, slog.New(slog.DiscardHandler))
	defer tr.Close()
	if err := p.A.Do(func() error { // A is the Translator's own ("node") namespace
		tr.Translate(recs, map[uint32]string{p.A.Inum: "", p.B.Inum: p.B.Path()})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := netip.AddrPortFrom(recs[0].NatRemoteAddr, recs[0].NatRemotePort); got != netip.AddrPortFrom(testnet.AddrA4, backendPort) {
		t.Errorf("translation %s, want the backend %s:%d (stats %+v)", got, testnet.AddrA4, backendPort, tr.Stats())
	}
}

// BenchmarkTranslate: the CPU cost of one client record's conntrack lookup over netlink (a
// final record, no cache), for a translated connection.
func BenchmarkTranslate(b *testing.B) {
	testgate.BPF(b)
	p := testnet.NewPair(b, testnet.Options{Prefix: "fsct"})
	vip := netip.MustParseAddr("10.96.77.9")
	if out, err := exec.Command("ip", "netns", "exec", p.A.Name, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
		"-d", vip.String(), "--dport", "80", "-j", "DNAT", "--to-destination", netip.AddrPortFrom(testnet.AddrB4, 8080).String()).CombinedOutput(); err != nil {
		b.Fatalf("iptables: %v: %s", err, out)
	}
	if out, err := exec.Command("ip", "-n", p.A.Name, "route", "add", vip.String()+"/32", "dev", p.A.Veth).CombinedOutput(); err != nil {
		b.Fatalf("route: %v: %s", err, out)
	}
	backend(b, p.B, netip.AddrPortFrom(testnet.AddrB4, 8080))
	var c net.Conn
	if err := p.A.Do(func() (err error) { c, err = net.Dial("tcp4", netip.AddrPortFrom(vip, 80).String()); return err }); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().(*net.TCPAddr).AddrPort()
	tr := New(Config{MaxLookupsPerSecond: 1 << 30}, nil, time.Now, slog.New(slog.DiscardHandler))
	defer tr.Close()
	paths := map[uint32]string{p.A.Inum: p.A.Path()}
	recs := make([]flow.Record, 1)
	b.ResetTimer()
	cpu := cpuTime()
	defer func() { b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op") }()
	for i := range b.N {
		recs[0] = flow.Record{ConnID: uint64(i), Direction: flow.Client, Netns: p.A.Inum, LocalAddr: local.Addr(), LocalPort: local.Port(), RemoteAddr: vip, RemotePort: 80}
		tr.Translate(recs, paths)
		if !recs[0].NatRemoteAddr.IsValid() {
			b.Fatal("not translated")
		}
	}
}

// cpuTime is the process's CPU time, user and kernel (the netlink round trip is mostly kernel).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backend listens on at in namespace ns, accepting and closing connections until the test ends.
func backend(tb testing.TB, ns *testnet.Netns, at netip.AddrPort) {
	tb.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp4", at.String())
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}
