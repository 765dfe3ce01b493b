package exporterbench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowscope/flowscope/internal/testnet"
)

// OpenResult is the exporter's memory while it tracks many open connections.
type OpenResult struct {
	Connections  int    `json:"connections"`
	Tracked      int    `json:"tracked_sockets"` // both ends are on this host: two per connection
	RSSBytes     uint64 `json:"rss_bytes"`
	PeakRSSBytes uint64 `json:"peak_rss_bytes"`
	MapBytes     uint64 `json:"bpf_map_bytes"`
}

// RunOpen opens n connections between two namespaces, holds them until the exporter tracks
// both ends of each, and reads the exporter's memory.
func RunOpen(ctx context.Context, exe string, n int) (OpenResult, error) {
	res := OpenResult{Connections: n}
	lim := uint64(2*n + 10000)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: lim, Max: lim}); err != nil {
		return res, fmt.Errorf("raising the open file limit to %d: %w", lim, err)
	}
	pair, err := testnet.CreatePair(testnet.Options{Prefix: "fsb"})
	if err != nil {
		return res, err
	}
	defer pair.Close()
	if err := pair.A.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("1024 65000"), 0)
	}); err != nil {
		return res, fmt.Errorf("widening the client's port range: %w", err)
	}
	const perPort = 50000
	var held []net.Conn
	var mu sync.Mutex
	keep := func(c net.Conn) { mu.Lock(); held = append(held, c); mu.Unlock() }
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	var targets []netip.AddrPort
	for i := 0; i < n; i += perPort {
		var ln net.Listener
		if err := pair.B.Do(func() (err error) {
			ln, err = net.Listen("tcp", netip.AddrPortFrom(pair.B.Addr4, 0).String())
			return err
		}); err != nil {
			return res, err
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				keep(c)
			}
		}()
		targets = append(targets, ln.Addr().(*net.TCPAddr).AddrPort())
	}
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return res, err
		}
	}
	pmax, mmax := maxIDs()
	ch, err := startChild(ctx, exe, pair.A.Inum, "--interim-interval=3s", fmt.Sprintf("--max-tracked=%d", 2*n+1000))
	if err != nil {
		return res, err
	}
	defer ch.stop()
	if err := waitFor(func() bool { return ch.summaries.Load() > 0 }, 20*time.Second); err != nil {
		return res, errors.New("the exporter wrote no summary within 20 s")
	}
	if err := dialMany(pair.A, targets, n, perPort, keep); err != nil {
		return res, err
	}
	err = waitFor(func() bool { s := ch.last.Load(); return s != nil && s.TrackedConns >= 2*n }, 120*time.Second)
	if s := ch.last.Load(); s != nil {
		res.Tracked = s.TrackedConns
	}
	if err != nil {
		return res, fmt.Errorf("the exporter tracks %d sockets, want %d", res.Tracked, 2*n)
	}
	_, res.PeakRSSBytes, _ = procCPU(ch.pid())
	res.RSSBytes = currentRSS(ch.pid())
	if objs, err := findObjects(pmax, mmax); err == nil {
		res.MapBytes = objs.mapBytes()
		objs.Close()
	}
	return res, nil
}

func dialMany(ns *testnet.Netns, targets []netip.AddrPort, n, perPort int, keep func(net.Conn)) error {
	const workers = 16
	errc := make(chan error, workers)
	for w := range workers {
		go func() {
			errc <- ns.Do(func() error {
				for i := w; i < n; i += workers {
					c, err := net.DialTimeout("tcp", targets[i/perPort].String(), 10*time.Second)
					if err != nil {
						return fmt.Errorf("connection %d: %w", i, err)
					}
					keep(c)
				}
				return nil
			})
		}()
	}
	var errs []error
	for range workers {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

func currentRSS(pid int) uint64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	var kb uint64
	for _, line := range splitLines(string(st)) {
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
			return kb * 1024
		}
	}
	return 0
}
