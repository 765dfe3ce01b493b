package attribute

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
)

// After a burst the holding window gives its memory back: the free list keeps no more records
// than the last period took, the arrival order holds only what is held, the translations'
// and out-of-line addresses' and counters' tables are let go and no exporter's pair is kept.
func TestBurstMemoryIsTrimmed(t *testing.T) {
	h := newHarness(t, Config{Window: 5 * time.Second})
	h.heartbeat(cart, cartIP, 0, 1000)
	const burst = 20_000
	ins := make([]Input, burst)
	for i := range ins {
		ins[i] = rec(flow.Client, cart, 1, 2)
		ins[i].Record.LocalPort = uint16(10_000 + i%50_000)
		ins[i].Record.ConnID = uint64(i + 1)
		ins[i].Exporter = fmt.Sprintf("exp-%d", i%7)
		if i%3 == 0 {
			ins[i].Record.NatRemoteAddr, ins[i].Record.NatRemotePort = netip.MustParseAddr("10.9.0.1"), 8080
		}
		if i%5 == 1 { // its addresses out of line
			ins[i].Record.LocalAddr, ins[i].Record.RemoteAddr = netip.MustParseAddr("fd00::5"), netip.MustParseAddr("fd00::9")
		}
		if i%4 == 2 { // its counters out of line
			ins[i].Record.BytesSent = 1 << 40
		}
	}
	h.add(ins...)
	for sec := 1; sec <= 8; sec++ { // every record decided (no owner for authIP) and recycled
		h.advance(float64(sec))
	}
	if len(h.out) != burst {
		t.Fatalf("%d connections out, want %d", len(h.out), burst)
	}
	h.a.mu.Lock()
	peakFree := len(h.a.free)
	h.a.mu.Unlock()
	for sec := 13; sec <= 40; sec++ { // quiet: two trims
		h.advance(float64(sec))
	}
	h.a.mu.Lock()
	free, freeCap, soonest := len(h.a.free), cap(h.a.free), h.a.soonest()
	nats, natsUsed, pairs := h.a.nats.list, h.a.nats.inUse(), 0
	addrs, counts := h.a.nats.addrs.list, h.a.nats.counts.list
	used := h.a.nats.addrs.inUse() + h.a.nats.counts.inUse()
	for _, p := range h.a.peers.list {
		if p.exporter != "" || p.refs != 0 {
			pairs++
		}
	}
	h.a.mu.Unlock()
	if nats != nil || natsUsed != 0 || addrs != nil || counts != nil || used != 0 || pairs != 0 {
		t.Errorf("after the burst: translations table %d entries (%d used), addresses' %d and counters' %d (%d used), %d exporters' pairs kept",
			len(nats), natsUsed, len(addrs), len(counts), used, pairs)
	}
	t.Logf("free records %d at the end of the burst, %d after it", peakFree, free)
	if peakFree < burst/2 {
		t.Errorf("only %d records recycled at the end of the burst", peakFree)
	}
	if free != 0 || freeCap > 4096 {
		t.Errorf("free list keeps %d records (capacity %d) after a quiet period", free, freeCap)
	}
	if soonest != nil {
		t.Errorf("the full policy finds a record after all were written")
	}
	// Records keep flowing afterwards.
	h.add(rec(flow.Client, cart, 41, 42))
	h.advance(50)
	if len(h.out) != burst+1 {
		t.Errorf("%d connections out after the burst, want %d", len(h.out), burst+1)
	}
}
