package exporter

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
)

func TestTwentyThousandConnectionsNoLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	const n = 20_000
	cli, srv, p := pairEndpoints(t, true)
	r := startExporter(t, Config{SummaryEvery: 200 * time.Millisecond}, tracer.Config{})
	ln := listen(t, srv, netip.MustParseAddr("127.0.0.1"))
	go func() {
		buf := make([]byte, 64)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				for {
					if _, err := c.Read(buf); err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	to := ln.Addr().String()
	cli.in(t, func() error {
		for i := range n {
			c, err := net.Dial("tcp", to)
			if err != nil {
				return err
			}
			if _, err := c.Write([]byte{byte(i)}); err != nil {
				return err
			}
			c.Close()
		}
		return nil
	})
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	inNs := func(f *flow.Record) bool { return f.Netns == p.A.Inum && !f.Interim }
	r.cap.waitFor(t, 2*n, 60*time.Second, inNs)
	time.Sleep(500 * time.Millisecond) // anything extra would show up now
	var clients, servers int
	ids := map[uint64]bool{}
	for _, f := range r.cap.matching(inNs) {
		switch {
		case f.Direction == flow.Client && f.RemotePort == port:
			clients++
		case f.Direction == flow.Server && f.LocalPort == port:
			servers++
		}
		if ids[f.ConnID] {
			t.Fatalf("duplicate conn id %d", f.ConnID)
		}
		ids[f.ConnID] = true
		if f.Outcome != flow.OK && f.Outcome != flow.Aborted {
			t.Fatalf("unexpected outcome: %+v", f)
		}
	}
	if clients != n || servers != n {
		t.Fatalf("got %d client and %d server records, want %d each", clients, servers, n)
	}
	r.cap.mu.Lock()
	last := r.cap.sums[len(r.cap.sums)-1]
	r.cap.mu.Unlock()
	if lost := last.Lost(); lost != 0 {
		t.Fatalf("exporter reports %d lost records: %+v", lost, last.JSON())
	}
	t.Logf("summary: %+v", last.JSON())
}
