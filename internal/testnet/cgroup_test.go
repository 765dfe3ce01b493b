package testnet_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowscope/flowscope/internal/testgate"
	"github.com/flowscope/flowscope/internal/testnet"
)

func TestCgroupDo(t *testing.T) {
	testgate.BPF(t)
	orig, err := testnet.SelfV2Path()
	if err != nil {
		t.Fatal(err)
	}
	pod := testnet.NewCgroup(t, testnet.KubeletPodPath("burstable", "0f3c5a8e-7b1d-4c2e-9a6f-1d2e3f4a5b6c", "cri-containerd", strings.Repeat("ab", 32)))
	svc := testnet.NewCgroup(t, "system.slice/nginx.service")

	for _, c := range []*testnet.Cgroup{pod, svc} {
		if _, err := os.Stat(c.Dir); err != nil {
			t.Fatal(err)
		}
		if want := kernfsID(t, c.Dir); c.ID() != want {
			t.Errorf("%s: ID() = %d, the kernel's file handle says %d", c.Path, c.ID(), want)
		}
		err := c.Do(func() error {
			self, err := testnet.SelfV2Path()
			if err != nil {
				return err
			}
			if self != c.Path {
				t.Errorf("inside Do: /proc/self/cgroup says %q, want %q", self, c.Path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if self, _ := testnet.SelfV2Path(); self != orig {
			t.Errorf("after Do: in %q, want back in %q", self, orig)
		}
	}
	if !strings.HasSuffix(pod.Path, "/kubepods-burstable-pod0f3c5a8e_7b1d_4c2e_9a6f_1d2e3f4a5b6c.slice/cri-containerd-"+strings.Repeat("ab", 32)+".scope") {
		t.Errorf("pod path %q", pod.Path)
	}
}

func TestCgroupCloseRemovesAll(t *testing.T) {
	testgate.BPF(t)
	c, err := testnet.CreateCgroup("a/b/c")
	if err != nil {
		t.Fatal(err)
	}
	top := filepath.Dir(filepath.Dir(filepath.Dir(c.Dir)))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(top); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Close: %v", top, err)
	}
}

func TestCreateCgroupRejectsEscapes(t *testing.T) {
	for _, name := range []string{"", "/abs", "..", "../x", "."} {
		if c, err := testnet.CreateCgroup(name); err == nil {
			c.Close()
			t.Errorf("CreateCgroup(%q) succeeded", name)
		}
	}
}

// kernfsID is the cgroup id from the kernel's own file handle for dir (kernfs encodes the
// 64-bit node id in it).
func kernfsID(t *testing.T, dir string) uint64 {
	t.Helper()
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := h.Bytes()
	if len(b) != 8 {
		t.Fatalf("file handle of %s has %d bytes, want 8", dir, len(b))
	}
	return binary.LittleEndian.Uint64(b)
}

// TestSocketsKeepTheirCgroup: a listener made in cgroup A and a client made in cgroup B keep
// those cgroups afterwards, and the accepted socket inherits the listener's (the kernel's own
// sock_diag says so).
func TestSocketsKeepTheirCgroup(t *testing.T) {
	testgate.BPF(t)
	p := testnet.NewPair(t, testnet.Options{})
	a := testnet.NewCgroup(t, "server.slice")
	b := testnet.NewCgroup(t, "client.slice")
	var ln net.Listener
	err := a.Do(func() error {
		return p.B.Do(func() (err error) {
			ln, err = net.Listen("tcp", netip.AddrPortFrom(p.B.Addr4, 0).String())
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var c net.Conn
	err = b.Do(func() error {
		c, err = dial(p.A, ln.Addr().String(), 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	check := func(what string, d testnet.SockDiag, err error, want *testnet.Cgroup) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if d.CgroupID != want.ID() {
			t.Errorf("%s: the kernel says cgroup %d, want %d (%s)", what, d.CgroupID, want.ID(), want.Path)
		}
	}
	d, err := testnet.ListenerDiag(p.B, ln)
	check("listener", d, err, a)
	d, err = testnet.ConnDiag(p.A, c)
	check("client", d, err, b)
	d, err = testnet.ConnDiag(p.B, s)
	check("accepted", d, err, a)
	if d.State != 1 {
		t.Errorf("accepted socket state %d, want ESTABLISHED (1)", d.State)
	}
}
