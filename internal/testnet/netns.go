// Package testnet builds the little networks that flowscope's kernel tests and benchmarks run
// on: pairs of network namespaces joined by a veth, cgroup v2 directories to put "pods" in, a
// TCX program that drops packets on a receive path, a tc shaper that adds queueing delay, and
// helpers for exact transfers. Everything it creates lives only inside its own namespaces and
// cgroups, under unique names, and is removed by Close (or by t.Cleanup in the New* wrappers).
//
// All of it needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF): gate tests with testgate.BPF.
package testnet

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace a test can run code in.
type Netns struct {
	Name  string     // name under /run/netns ("" for the host namespace)
	Inum  uint32     // namespace inode number, as the kernel reports net->ns.inum (flow.Record.Netns)
	Addr4 netip.Addr // IPv4 address on Veth (invalid for the host namespace)
	Addr6 netip.Addr // IPv6 ULA address on Veth (invalid for the host namespace)
	Veth  string     // the veth device inside this namespace ("" for the host namespace)
	Index int        // Veth's interface index inside this namespace

	path string // file that refers to the namespace
}

// Host returns the network namespace this process started in, so loopback tests can use the
// same Do as namespace tests.
func Host() (*Netns, error) {
	n := &Netns{path: "/proc/self/ns/net"}
	inum, err := nsInode(n.path)
	if err != nil {
		return nil, err
	}
	n.Inum = inum
	return n, nil
}

// Path is the file that refers to the namespace (/run/netns/NAME, or /proc/self/ns/net for the host).
func (n *Netns) Path() string { return n.path }

// Do runs fn on an OS thread switched into the namespace, then switches the thread back.
// Sockets created inside fn (net.Listen, net.Dialer.Dial, ...) belong to the namespace for
// their whole life and can be used anywhere afterwards. fn must not start goroutines that
// expect to be in the namespace: they run on other threads. Processes started inside fn with
// os/exec inherit the namespace.
func (n *Netns) Do(fn func() error) (err error) {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening the thread's network namespace: %w", err)
	}
	defer orig.Close()
	target, err := os.Open(n.path)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening network namespace %s: %w", n.path, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering network namespace %s: %w", n.path, err)
	}
	defer func() {
		if rerr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); rerr != nil {
			// The thread stays locked, so the runtime discards it when the goroutine ends
			// instead of reusing a thread in the wrong namespace.
			if err == nil {
				err = fmt.Errorf("returning from network namespace %s: %w", n.path, rerr)
			}
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// closeAtEnd fails the test on err, else closes v when the test ends.
func closeAtEnd[T interface{ Close() error }](t testing.TB, v T, err error) T {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("cleaning up %T: %v", v, err)
		}
	})
	return v
}

func nsInode(path string) (uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return uint32(st.Ino), nil
}

// uniqueName returns prefix-<pid>-<random hex>, unique across the processes on this machine.
func uniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", prefix, os.Getpid(), hex.EncodeToString(b[:]))
}
