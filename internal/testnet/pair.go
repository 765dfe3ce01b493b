package testnet

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Options shape a Pair. The zero value is ready to use.
type Options struct {
	Prefix string // namespace name prefix (default "fst"); names are PREFIX-<pid>-<random>-a/-b
	MTU    int    // veth MTU (default: the kernel's, 1500)
}

// Addresses of the two ends of every pair. They exist only inside the pair's namespaces, so
// every pair can use the same ones.
var (
	AddrA4 = netip.MustParseAddr("10.248.0.1")
	AddrB4 = netip.MustParseAddr("10.248.0.2")
	AddrA6 = netip.MustParseAddr("fd00:f5c0:0:1::1")
	AddrB6 = netip.MustParseAddr("fd00:f5c0:0:1::2")
)

// Pair is two network namespaces joined by a veth, with IPv4 and IPv6 addresses on both ends
// and every link (lo included) up.
type Pair struct {
	A, B *Netns
}

// NewPair creates a Pair and removes it when the test ends.
func NewPair(t testing.TB, opts Options) *Pair {
	t.Helper()
	v, err := CreatePair(opts)
	return closeAtEnd(t, v, err)
}

// CreatePair creates a Pair; the caller must Close it. On error nothing is left behind.
func CreatePair(opts Options) (_ *Pair, err error) {
	if opts.Prefix == "" {
		opts.Prefix = "fst"
	}
	base := uniqueName(opts.Prefix)
	p := &Pair{
		A: &Netns{Name: base + "-a", Addr4: AddrA4, Addr6: AddrA6, Veth: "veth-a"},
		B: &Netns{Name: base + "-b", Addr4: AddrB4, Addr6: AddrB6, Veth: "veth-b"},
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Close())
		}
	}()
	for _, n := range []*Netns{p.A, p.B} {
		if err := ip("netns", "add", n.Name); err != nil {
			return nil, err
		}
		n.path = "/run/netns/" + n.Name
		if n.Inum, err = nsInode(n.path); err != nil {
			return nil, err
		}
	}
	link := []string{"-n", p.A.Name, "link", "add", p.A.Veth}
	if opts.MTU > 0 {
		link = append(link, "mtu", strconv.Itoa(opts.MTU))
	}
	link = append(link, "type", "veth", "peer", "name", p.B.Veth, "netns", p.B.Name)
	if opts.MTU > 0 {
		link = append(link, "mtu", strconv.Itoa(opts.MTU))
	}
	if err := ip(link...); err != nil {
		return nil, err
	}
	for _, n := range []*Netns{p.A, p.B} {
		if err := n.configure(); err != nil {
			return nil, err
		}
	}
	for _, n := range []*Netns{p.A, p.B} {
		if err := n.waitRunning(5 * time.Second); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// waitRunning waits until the veth is running. The kernel activates a device's queue from its
// link watcher up to a second after the link comes up, and drops what is sent before: without
// this wait the first SYN over a new pair is often lost and the connect takes a second more.
func (n *Netns) waitRunning(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	return n.Do(func() error {
		for {
			ifc, err := net.InterfaceByName(n.Veth)
			if err != nil {
				return fmt.Errorf("finding %s in %s: %w", n.Veth, n.Name, err)
			}
			if ifc.Flags&net.FlagRunning != 0 {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s in %s is not running after %v", n.Veth, n.Name, timeout)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// configure puts the addresses on the veth, brings the links up and learns the veth's index.
func (n *Netns) configure() error {
	steps := [][]string{
		{"-n", n.Name, "addr", "add", n.Addr4.String() + "/24", "dev", n.Veth},
		{"-n", n.Name, "-6", "addr", "add", n.Addr6.String() + "/64", "dev", n.Veth, "nodad"},
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"-n", n.Name, "link", "set", n.Veth, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return n.Do(func() error {
		ifc, err := net.InterfaceByName(n.Veth)
		if err != nil {
			return fmt.Errorf("finding %s in %s: %w", n.Veth, n.Name, err)
		}
		n.Index = ifc.Index
		return nil
	})
}

// Close deletes both namespaces (and with them the veth). Sockets still open in a namespace
// keep it alive, unnamed, until they are closed.
func (p *Pair) Close() error {
	var errs []error
	for _, n := range []*Netns{p.A, p.B} {
		if n.path == "" {
			continue
		}
		if err := ip("netns", "del", n.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		n.path = ""
	}
	return errors.Join(errs...)
}

// ip runs iproute2's ip with args.
func ip(args ...string) error { return run("ip", args...) }

func run(name string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
