package exporterbench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
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
// both ends of each, and reads the exporter's memory. extra are more exporter flags.
func RunOpen(ctx context.Context, exe string, n int, extra ...string) (OpenResult, error) {
	res := OpenResult{Connections: n}
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return res, err
		}
	}
	pair, err := testnet.CreatePair(testnet.Options{Prefix: "fsb"})
	if err != nil {
		return res, err
	}
	defer pair.Close()
	const perListener = 40000 // holders go round robin over listeners: at most 3 × 16,000 each
	var targets []netip.AddrPort
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	err = pair.B.Do(func() error {
		for _, kv := range [][2]string{{"net/core/somaxconn", "65535"}, {"net/ipv4/tcp_max_syn_backlog", "65535"}} {
			if err := os.WriteFile("/proc/sys/"+kv[0], []byte(kv[1]), 0); err != nil {
				return fmt.Errorf("setting %s: %w", kv[0], err)
			}
		}
		for i := 0; i < n; i += perListener {
			fd, port, err := queueListener(pair.B.Addr4, perListener+1000)
			if err != nil {
				return err
			}
			fds = append(fds, fd)
			targets = append(targets, netip.AddrPortFrom(pair.B.Addr4, port))
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if err := pair.A.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("1024 65000"), 0)
	}); err != nil {
		return res, fmt.Errorf("widening the client's port range: %w", err)
	}
	pmax, mmax := maxIDs()
	own, remove, err := privateCopy(exe)
	if err != nil {
		return res, err
	}
	defer remove()
	args := append([]string{"--interim-interval=3s", fmt.Sprintf("--max-tracked=%d", 2*n+1000)}, extra...)
	ch, err := startChild(ctx, own, []uint32{pair.A.Inum, pair.B.Inum}, args...)
	if err != nil {
		return res, err
	}
	defer ch.stop()
	if err := waitFor(func() bool { return ch.summaries.Load() > 0 }, 20*time.Second); err != nil {
		return res, errors.New("the exporter wrote no summary within 20 s")
	}
	hs, err := startHolders(ctx, exe, pair.A.Path(), targets, n)
	defer stopHolders(hs)
	if err != nil {
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

func currentRSS(pid int) uint64 { return statusKB(pid, "VmRSS") * 1024 }
