package testnet_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/testgate"
	"github.com/flowscope/flowscope/internal/testnet"
)

// listen opens a TCP listener on addr:0 inside ns.
func listen(t *testing.T, ns *testnet.Netns, addr netip.Addr) net.Listener {
	t.Helper()
	var ln net.Listener
	err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dial connects from inside ns to addr with a timeout.
func dial(ns *testnet.Netns, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		c, err = (&net.Dialer{Timeout: timeout}).Dial("tcp", addr)
		return err
	})
	return c, err
}

// serveDown accepts one connection on ln, reads up bytes, writes down bytes and closes; the
// accepted connection is sent on the returned channel once the transfer is done (not closed
// yet), errors on errc.
func serveDown(ln net.Listener, up, down int64) (chan net.Conn, chan error) {
	conns, errc := make(chan net.Conn, 1), make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		if err := testnet.ReadN(c, up); err != nil {
			errc <- err
			return
		}
		if err := testnet.WriteN(c, down); err != nil {
			errc <- err
			return
		}
		conns <- c
		errc <- nil
	}()
	return conns, errc
}

// transfer runs one exchange of up/down bytes between a client in from and a listener ln and
// returns both sockets, still open.
func transfer(t *testing.T, from *testnet.Netns, ln net.Listener, up, down int64) (client, server net.Conn) {
	t.Helper()
	conns, errc := serveDown(ln, up, down)
	c, err := dial(from, ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := testnet.WriteN(c, up); err != nil {
		t.Fatal(err)
	}
	if err := testnet.ReadN(c, down); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	s := <-conns
	t.Cleanup(func() { s.Close() })
	return c, s
}

func TestPairConnectivity(t *testing.T) {
	testgate.BPF(t)
	t.Parallel()
	p := testnet.NewPair(t, testnet.Options{})
	host, err := testnet.Host()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testnet.Netns{p.A, p.B} {
		if n.Inum == 0 || n.Inum == host.Inum || n.Index <= 0 {
			t.Errorf("%s: inum %d (host %d), veth %s index %d", n.Name, n.Inum, host.Inum, n.Veth, n.Index)
		}
		if _, err := os.Stat(n.Path()); err != nil {
			t.Error(err)
		}
		// Inside Do the thread is in the namespace the kernel numbers Inum.
		err := n.Do(func() error {
			link, err := os.Readlink("/proc/thread-self/ns/net")
			if want := fmt.Sprintf("net:[%d]", n.Inum); link != want {
				t.Errorf("%s: inside Do the thread is in %q, want %q", n.Name, link, want)
			}
			return err
		})
		if err != nil {
			t.Error(err)
		}
	}
	for _, tc := range []struct {
		name     string
		from, to *testnet.Netns
		addr     netip.Addr
	}{
		{"ipv4 a to b", p.A, p.B, p.B.Addr4},
		{"ipv6 a to b", p.A, p.B, p.B.Addr6},
		{"ipv4 b to a", p.B, p.A, p.A.Addr4},
		{"ipv6 b to a", p.B, p.A, p.A.Addr6},
		{"ipv4 loopback in a", p.A, p.A, netip.MustParseAddr("127.0.0.1")},
		{"ipv6 loopback in b", p.B, p.B, netip.IPv6Loopback()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t, tc.to, tc.addr)
			c, s := transfer(t, tc.from, ln, 100_000, 300_000)
			for _, end := range []struct {
				ns   *testnet.Netns
				conn net.Conn
			}{{tc.from, c}, {tc.to, s}} {
				if d, err := testnet.ConnDiag(end.ns, end.conn); err != nil || d.Inode == 0 || d.State != 1 {
					t.Errorf("sock_diag of %v: %+v, %v", end.conn.LocalAddr(), d, err)
				}
			}
			local := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
			if tc.from != tc.to && local != map[bool]netip.Addr{true: tc.from.Addr4, false: tc.from.Addr6}[tc.addr.Is4()] {
				t.Errorf("client address %v, want the veth address of %s", local, tc.from.Name)
			}
		})
	}
}

func TestHostLoopback(t *testing.T) {
	testgate.BPF(t)
	t.Parallel()
	host, err := testnet.Host()
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t, host, netip.MustParseAddr("127.0.0.1"))
	transfer(t, host, ln, 1000, 1000)
}

func TestPairCloseRemovesNamespaces(t *testing.T) {
	testgate.BPF(t)
	t.Parallel()
	p, err := testnet.CreatePair(testnet.Options{Prefix: "fstclose"})
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{p.A.Path(), p.B.Path()}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Close: %v", path, err)
		}
	}
}

func TestDropPayloadCausesRetransmits(t *testing.T) {
	testgate.BPF(t)
	t.Parallel()
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			t.Parallel()
			p := testnet.NewPair(t, testnet.Options{})
			addr := p.B.Addr4
			if v6 {
				addr = p.B.Addr6
			}
			ln := listen(t, p.B, addr)
			port := uint16(ln.Addr().(*net.TCPAddr).Port)
			// The client in A receives the download: drop on A's ingress so the server retransmits.
			d := testnet.NewDropper(t, p.A, p.A.Veth, testnet.DropConfig{PayloadFraction: 0.1, Port: port})
			_, server := transfer(t, p.A, ln, 10_000, 6_000_000) // ~160 GSO packets: fewer than 2 drops is a one-in-a-million event

			n, err := d.Counts()
			if err != nil {
				t.Fatal(err)
			}
			frac := float64(n.PayloadDropped) / float64(n.Payload)
			t.Logf("counts %+v: dropped %.3f of payload packets", n, frac)
			if n.Payload < 40 || n.PayloadDropped < 2 || frac > 0.3 {
				t.Errorf("dropped %d of %d payload packets, want about 10%%", n.PayloadDropped, n.Payload)
			}
			info, err := testnet.TCPInfo(server.(*net.TCPConn))
			if err != nil {
				t.Fatal(err)
			}
			if info.Total_retrans == 0 {
				t.Errorf("server TCP_INFO total_retrans = 0 after %d drops", n.PayloadDropped)
			}
			t.Logf("server total_retrans %d", info.Total_retrans)
		})
	}
}

func TestDropEveryNthIsExact(t *testing.T) {
	testgate.BPF(t)
	t.Parallel()
	p := testnet.NewPair(t, testnet.Options{})
	ln := listen(t, p.B, p.B.Addr4)
	d := testnet.NewDropper(t, p.A, p.A.Veth, testnet.DropConfig{PayloadEvery: 5})
	transfer(t, p.A, ln, 10_000, 2_000_000)
	n, err := d.Counts()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("counts %+v", n)
	if n.Payload < 5 || n.PayloadDropped != n.Payload/5 {
		t.Errorf("dropped %d of %d payload packets, want exactly every 5th", n.PayloadDropped, n.Payload)
	}
}

func TestDropSYNTimesOut(t *testing.T) {
	testgate.BPF(t)
	t.Parallel()
	p := testnet.NewPair(t, testnet.Options{})
	ln := listen(t, p.B, p.B.Addr6)
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	d := testnet.NewDropper(t, p.B, p.B.Veth, testnet.DropConfig{SYNPort: port})
	c, err := dial(p.A, ln.Addr().String(), 300*time.Millisecond)
	var nerr net.Error
	if err == nil {
		c.Close()
		t.Fatal("dial succeeded through a SYN drop")
	} else if !errors.As(err, &nerr) || !nerr.Timeout() {
		t.Fatalf("dial error %v, want a timeout", err)
	}
	n, err := d.Counts()
	if err != nil {
		t.Fatal(err)
	}
	if n.SYNDropped == 0 || n.SYN < n.SYNDropped {
		t.Errorf("counts %+v, want SYNs dropped", n)
	}
	// Other ports still work, and clearing the config lets the port through.
	if err := d.Set(testnet.DropConfig{}); err != nil {
		t.Fatal(err)
	}
	transfer(t, p.A, ln, 10, 10)
}

func TestDropRejectsBadFraction(t *testing.T) {
	testgate.BPF(t)
	t.Parallel()
	p := testnet.NewPair(t, testnet.Options{})
	d := testnet.NewDropper(t, p.A, p.A.Veth, testnet.DropConfig{})
	for _, f := range []float64{-0.1, 1.5} {
		if err := d.Set(testnet.DropConfig{PayloadFraction: f}); err == nil {
			t.Errorf("Set(fraction %v) succeeded", f)
		}
	}
}

func TestShaperRaisesRTT(t *testing.T) {
	testgate.BPF(t)
	t.Parallel()
	p := testnet.NewPair(t, testnet.Options{})
	ln := listen(t, p.B, p.B.Addr4)
	_, plain := transfer(t, p.A, ln, 10, 1_000_000)
	before, err := testnet.TCPInfo(plain.(*net.TCPConn))
	if err != nil {
		t.Fatal(err)
	}
	testnet.NewShaper(t, p.B, p.B.Veth, testnet.Shape{Rate: "40mbit", Burst: "16kb", Latency: "200ms"})
	_, shaped := transfer(t, p.A, ln, 10, 1_000_000)
	after, err := testnet.TCPInfo(shaped.(*net.TCPConn))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server srtt %d µs unshaped, %d µs shaped", before.Rtt, after.Rtt)
	if after.Rtt < 2000 || after.Rtt < 5*before.Rtt {
		t.Errorf("srtt %d µs with the shaper, %d µs without: want a clear rise", after.Rtt, before.Rtt)
	}
}

func TestCloseAbortSendsReset(t *testing.T) {
	testgate.BPF(t)
	t.Parallel()
	p := testnet.NewPair(t, testnet.Options{})
	ln := listen(t, p.B, p.B.Addr4)
	c, s := transfer(t, p.A, ln, 10, 10)
	if err := testnet.CloseAbort(s); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read after the peer's abort: %v, want connection reset", err)
	}
}

func TestKubeletPodPath(t *testing.T) {
	for _, tc := range []struct{ qos, uid, rt, id, want string }{
		{"burstable", "1b2c-3d", "cri-containerd", "abc", "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c_3d.slice/cri-containerd-abc.scope"},
		{"", "1b2c-3d", "crio", "abc", "kubepods.slice/kubepods-pod1b2c_3d.slice/crio-abc.scope"},
		{"besteffort", "u", "docker", "", "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podu.slice"},
	} {
		if got := testnet.KubeletPodPath(tc.qos, tc.uid, tc.rt, tc.id); got != tc.want {
			t.Errorf("KubeletPodPath(%q, %q, %q, %q) = %q, want %q", tc.qos, tc.uid, tc.rt, tc.id, got, tc.want)
		}
	}
}
