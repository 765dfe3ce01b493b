package exporter

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/testgate"
	"github.com/flowscope/flowscope/internal/testnet"
)

const (
	upBytes   = 1_000_000
	downBytes = 3_000_000
)

// The server runs in a cgroup shaped like a kubelet pod's container, the client in a systemd
// service's: the exporter must name both from the socket's own cgroup.
const (
	podUID      = "0c4c8d2e-7a1b-4f3e-9d6a-5b2e1f0a9c11"
	containerID = "4f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899a"
	clientUnit  = "demo-client.service"
)

// pairEndpoints returns a client in namespace A and a server in namespace B (or both in A for
// loopback), each in its own cgroup.
func pairEndpoints(t *testing.T, loopback bool) (cli, srv endpoint, p *testnet.Pair) {
	testgate.BPF(t)
	p = testnet.NewPair(t, testnet.Options{})
	cli = endpoint{ns: p.A, cg: testnet.NewCgroup(t, "system.slice/"+clientUnit)}
	srv = endpoint{ns: p.B, cg: testnet.NewCgroup(t, testnet.KubeletPodPath("burstable", podUID, "cri-containerd", containerID))}
	if loopback {
		srv.ns = p.A
	}
	return cli, srv, p
}

func TestExactBytesBothSides(t *testing.T) {
	cases := []struct {
		name     string
		loopback bool
		v6       bool
	}{{"veth-ipv4", false, false}, {"veth-ipv6", false, true}, {"loopback-ipv4", true, false}, {"loopback-ipv6", true, true}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cli, srv, p := pairEndpoints(t, tc.loopback)
			r := startExporter(t, Config{}, tracer.Config{})
			srvAddr, cliAddr := p.B.Addr4, p.A.Addr4
			family := flow.IPv4
			switch {
			case tc.loopback && tc.v6:
				srvAddr, cliAddr, family = netip.IPv6Loopback(), netip.IPv6Loopback(), flow.IPv6
			case tc.loopback:
				srvAddr, cliAddr = netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1")
			case tc.v6:
				srvAddr, cliAddr, family = p.B.Addr6, p.A.Addr6, flow.IPv6
			}
			cport, sport := exchange(t, cli, srv, srvAddr, upBytes, downBytes)
			c, s := sides(t, r, cport, sport)
			check := func(side string, f flow.Record, dir flow.Direction, local, remote netip.Addr, lport, rport uint16, sent, recv uint64, ns uint32, cg uint64) {
				t.Helper()
				if f.Direction != dir || f.Family != family || f.LocalAddr != local || f.RemoteAddr != remote ||
					f.LocalPort != lport || f.RemotePort != rport || f.Netns != ns || f.CgroupID != cg {
					t.Errorf("%s: identity wrong: %+v", side, f)
				}
				if f.BytesSent != sent || f.BytesReceived != recv {
					t.Errorf("%s: bytes sent/received = %d/%d, want %d/%d", side, f.BytesSent, f.BytesReceived, sent, recv)
				}
				if f.Outcome != flow.OK || !f.StartKnown || !f.Start.Before(f.End) || f.Interim || f.ConnID == 0 {
					t.Errorf("%s: outcome/times wrong: %+v", side, f)
				}
				if f.SegsSent == 0 || f.SegsReceived == 0 || f.SrttUs == 0 || f.MinRttUs == 0 || f.MinRttUs > f.SrttUs*10 {
					t.Errorf("%s: segments/RTT implausible: %+v", side, f)
				}
			}
			check("client", c, flow.Client, cliAddr, srvAddr, cport, sport, upBytes, downBytes, cli.ns.Inum, cli.cg.ID())
			check("server", s, flow.Server, srvAddr, cliAddr, sport, cport, downBytes, upBytes, srv.ns.Inum, srv.cg.ID())
			if w := s.Workload; w.Kind != flow.KindPod || w.PodUID != podUID || w.ContainerID != containerID || w.Runtime != "containerd" {
				t.Errorf("server workload = %+v, want pod %s container %s", w, podUID, containerID)
			}
			if w := c.Workload; w.Kind != flow.KindUnit || w.Unit != clientUnit {
				t.Errorf("client workload = %+v, want systemd unit %s", w, clientUnit)
			}
			if c.Workload.Pid != uint32(os.Getpid()) || c.Workload.Comm != truncComm(filepath.Base(os.Args[0])) {
				t.Errorf("client process = %d %q, want %d %q", c.Workload.Pid, c.Workload.Comm, os.Getpid(), truncComm(filepath.Base(os.Args[0])))
			}
			if c.CloseState != "FIN_WAIT2" || s.CloseState != "LAST_ACK" {
				t.Errorf("close states %s/%s", c.CloseState, s.CloseState)
			}
		})
	}
}

func truncComm(s string) string {
	if len(s) > 15 {
		return s[:15]
	}
	return s
}

func TestFallbackHooksExactBytes(t *testing.T) {
	for _, hook := range []tracer.Hook{tracer.HookRawTP, tracer.HookTracepoint} {
		t.Run(string(hook), func(t *testing.T) {
			cli, srv, p := pairEndpoints(t, false)
			r := startExporter(t, Config{}, tracer.Config{Hook: hook})
			cport, sport := exchange(t, cli, srv, p.B.Addr4, upBytes, downBytes)
			c, s := sides(t, r, cport, sport)
			if c.BytesSent != upBytes || c.BytesReceived != downBytes || s.BytesSent != downBytes || s.BytesReceived != upBytes {
				t.Errorf("bytes wrong: client %d/%d server %d/%d", c.BytesSent, c.BytesReceived, s.BytesSent, s.BytesReceived)
			}
			if c.Direction != flow.Client || s.Direction != flow.Server || !c.StartKnown || !s.StartKnown || c.ConnID == s.ConnID {
				t.Errorf("direction/start/id wrong: %+v / %+v", c, s)
			}
		})
	}
}

func TestRefusedConnection(t *testing.T) {
	cli, srv, p := pairEndpoints(t, false)
	r := startExporter(t, Config{}, tracer.Config{})
	ln := listen(t, srv, p.B.Addr4)
	to := ln.Addr().String()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close() // nothing listens any more: the SYN gets a RST
	if _, err := dial(t, cli, to, 2*time.Second); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	got := r.cap.waitFor(t, 1, 10*time.Second, func(f *flow.Record) bool { return f.RemotePort == port && f.Netns == p.A.Inum })
	f := got[0]
	if f.Outcome != flow.Refused || f.Direction != flow.Client || f.ResetsReceived != 1 || f.CloseState != "SYN_SENT" || f.BytesSent != 0 {
		t.Fatalf("got %+v", f)
	}
}

func TestConnectTimeout(t *testing.T) {
	cli, srv, p := pairEndpoints(t, false)
	r := startExporter(t, Config{}, tracer.Config{})
	ln := listen(t, srv, p.B.Addr4)
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	testnet.NewDropper(t, p.B, p.B.Veth, testnet.DropConfig{SYNPort: port})
	if _, err := dial(t, cli, ln.Addr().String(), 1500*time.Millisecond); err == nil {
		t.Fatal("dial through a SYN drop succeeded")
	}
	got := r.cap.waitFor(t, 1, 10*time.Second, func(f *flow.Record) bool { return f.RemotePort == port && f.Netns == p.A.Inum })
	f := got[0]
	if f.Outcome != flow.Timeout || f.Direction != flow.Client || f.ResetsReceived != 0 || f.CloseState != "SYN_SENT" {
		t.Fatalf("got %+v", f)
	}
	if f.SegsSent < 2 {
		t.Errorf("expected SYN retransmissions, segs_sent=%d", f.SegsSent)
	}
}

func TestResetByPeer(t *testing.T) {
	cli, srv, p := pairEndpoints(t, false)
	r := startExporter(t, Config{}, tracer.Config{})
	ln := listen(t, srv, p.B.Addr4)
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			err = testnet.ReadN(c, 1000)
		}
		if err == nil {
			err = testnet.CloseAbort(c) // SO_LINGER 0: RST instead of FIN
		}
		accepted <- err
	}()
	c, err := dial(t, cli, ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := testnet.WriteN(c, 1000); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	_, _ = testnet.ReadToEOF(c) // sees the reset
	cport := uint16(c.LocalAddr().(*net.TCPAddr).Port)
	sport := uint16(ln.Addr().(*net.TCPAddr).Port)
	c.Close()
	cl, sv := sides(t, r, cport, sport)
	if cl.Outcome != flow.Reset || cl.ResetsReceived != 1 || cl.BytesSent != 1000 {
		t.Errorf("client: %+v", cl)
	}
	if sv.Outcome != flow.Aborted || sv.ResetsSent != 1 || sv.BytesReceived != 1000 || sv.CloseState != "ESTABLISHED" {
		t.Errorf("server: %+v", sv)
	}
}

func TestRetransmitsKeepBytesExact(t *testing.T) {
	cli, srv, p := pairEndpoints(t, false)
	r := startExporter(t, Config{}, tracer.Config{})
	// Every 7th packet carrying payload (~14%) is dropped where each side receives it. The drop
	// is deterministic: at random 10%, the server's ~30 received packets (GSO) went undropped
	// in one run of twenty, and then there is nothing for the client to retransmit.
	da := testnet.NewDropper(t, p.A, p.A.Veth, testnet.DropConfig{PayloadEvery: 7})
	db := testnet.NewDropper(t, p.B, p.B.Veth, testnet.DropConfig{PayloadEvery: 7})
	cport, sport := exchange(t, cli, srv, p.B.Addr4, upBytes, downBytes)
	c, s := sides(t, r, cport, sport)
	ca, _ := da.Counts()
	cb, _ := db.Counts()
	if ca.PayloadDropped == 0 || cb.PayloadDropped == 0 {
		t.Fatalf("the test's drops did not happen: %+v at the client, %+v at the server", ca, cb)
	}
	t.Logf("dropped %d/%d at the client, %d/%d at the server; retransmits client %d (%d B), server %d (%d B)",
		ca.PayloadDropped, ca.Payload, cb.PayloadDropped, cb.Payload, c.Retransmits, c.BytesRetransmitted, s.Retransmits, s.BytesRetransmitted)
	if c.Retransmits == 0 || s.Retransmits == 0 || c.BytesRetransmitted == 0 || s.BytesRetransmitted == 0 {
		t.Errorf("no retransmits seen: client %d, server %d", c.Retransmits, s.Retransmits)
	}
	if c.BytesSent != upBytes || c.BytesReceived != downBytes || s.BytesSent != downBytes || s.BytesReceived != upBytes {
		t.Errorf("bytes not exact under loss: client %d/%d server %d/%d", c.BytesSent, c.BytesReceived, s.BytesSent, s.BytesReceived)
	}
}

func TestSrttGrowsUnderQueueing(t *testing.T) {
	cli, srv, p := pairEndpoints(t, false)
	r := startExporter(t, Config{}, tracer.Config{})
	cport, sport := exchange(t, cli, srv, p.B.Addr4, 10_000, 1_000_000)
	_, base := sides(t, r, cport, sport)
	testnet.NewShaper(t, p.B, p.B.Veth, testnet.Shape{Rate: "8mbit", Burst: "16kb", Latency: "400ms"})
	cport, sport = exchange(t, cli, srv, p.B.Addr4, 10_000, 1_000_000)
	_, shaped := sides(t, r, cport, sport)
	t.Logf("server srtt without shaping %d us, with %d us", base.SrttUs, shaped.SrttUs)
	if shaped.SrttUs < 10*base.SrttUs || shaped.SrttUs < 5000 {
		t.Errorf("srtt did not grow under queueing: %d → %d us", base.SrttUs, shaped.SrttUs)
	}
}

// TestServerProcessFromListener: an accepted socket has no process context; once a snapshot has
// seen its listener, the listener's single owning process names it.
func TestServerProcessFromListener(t *testing.T) {
	cli, srv, p := pairEndpoints(t, false)
	r := startExporter(t, Config{SnapshotEvery: 200 * time.Millisecond}, tracer.Config{})
	ln := listen(t, srv, p.B.Addr4)
	time.Sleep(1500 * time.Millisecond) // a snapshot pass sees the listener, and a /proc scan (at most one a second) finds its process
	go func() {
		c, err := ln.Accept()
		if err == nil {
			testnet.ReadToEOF(c)
			c.Close()
		}
	}()
	c, err := dial(t, cli, ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cport, sport := uint16(c.LocalAddr().(*net.TCPAddr).Port), uint16(ln.Addr().(*net.TCPAddr).Port)
	c.Close()
	_, s := sides(t, r, cport, sport)
	if s.Workload.Pid != uint32(os.Getpid()) || s.Workload.Comm != truncComm(filepath.Base(os.Args[0])) {
		t.Errorf("server process = %d %q, want the listener's %d", s.Workload.Pid, s.Workload.Comm, os.Getpid())
	}
}

// TestServerProcessFromClose: an accepted socket learns its process when the process closes
// it (FIN_WAIT1 or LAST_ACK, entered only from close or shutdown), whichever side closes
// first, with no listener's owner known.
func TestServerProcessFromClose(t *testing.T) {
	cli, srv, p := pairEndpoints(t, false)
	cfg := Config{SnapshotEvery: time.Hour}
	cfg.Table.ListenerOwner = func(uint64) (uint32, string, bool) { return 0, "", false }
	r := startExporter(t, cfg, tracer.Config{})
	ln := listen(t, srv, p.B.Addr4)
	for _, serverFirst := range []bool{false, true} {
		accepted := make(chan struct{})
		go func() {
			defer close(accepted)
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !serverFirst {
				testnet.ReadToEOF(c) // the client's FIN first: CLOSE_WAIT, then LAST_ACK at close
			}
			c.Close()
		}()
		c, err := dial(t, cli, ln.Addr().String(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		cport, sport := uint16(c.LocalAddr().(*net.TCPAddr).Port), uint16(ln.Addr().(*net.TCPAddr).Port)
		if serverFirst {
			<-accepted
			testnet.ReadToEOF(c)
		}
		c.Close()
		<-accepted
		_, s := sides(t, r, cport, sport)
		if s.Workload.Pid != uint32(os.Getpid()) || s.Workload.Comm != truncComm(filepath.Base(os.Args[0])) {
			t.Errorf("server closing first %v: process = %d %q, want %d", serverFirst, s.Workload.Pid, s.Workload.Comm, os.Getpid())
		}
	}
}
