package transport_test

import (
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/collector/ingest"
	"github.com/flowscope/flowscope/internal/transport"
)

// outageLength is a collector outage at a steady rate, scaled down from the 60 s to
// keep the suite fast (FLOWSCOPE_OUTAGE=60s runs the full one).
func outageLength(t *testing.T) time.Duration {
	if v := os.Getenv("FLOWSCOPE_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	return 3 * time.Second
}

// TestOutage writes at a steady rate while the collector is down, then brings it back: within
// the buffer bound nothing is lost; beyond it exactly the counted number of flows is missing.
func TestOutage(t *testing.T) {
	outage := outageLength(t)
	const perTick, tick = 200, 20 * time.Millisecond
	ticks := int(outage / tick)
	for _, tc := range []struct {
		name        string
		bufferBytes int
		wantLoss    bool
	}{
		{"within the bound", 64 << 20, false},
		{"beyond the bound", 1 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			cc := collectorConfig(t)
			cc.GRPCListen, cc.HTTPSListen, cc.UDPListen = net.JoinHostPort("127.0.0.1", itoa(port)), "", ""
			cfg := shipperConfig(t, ingest.Addrs{GRPC: cc.GRPCListen}, transport.GRPC)
			cfg.BufferBytes, cfg.BatchSize = tc.bufferBytes, 500
			cfg.MaxPending = 10 * perTick * 50
			s, _ := startShipper(t, cfg)
			for i := range ticks { // the collector is down
				s.Write(records(i*perTick, perTick))
				time.Sleep(tick)
			}
			snk := newSink()
			startCollector(t, cc, snk)
			for i := ticks; i < ticks+25; i++ { // fresh data keeps coming while the backlog drains
				s.Write(records(i*perTick, perTick))
				time.Sleep(tick)
			}
			st := waitDrained(t, s, 60*time.Second)
			written := (ticks + 25) * perTick
			want := written - int(st.RecordsDropped)
			snk.waitTotal(t, want, 20*time.Second)
			time.Sleep(200 * time.Millisecond)
			distinct, total := snk.count()
			if distinct != want || total != want {
				t.Errorf("collector has %d flows (%d distinct), want written %d - dropped %d = %d",
					total, distinct, written, st.RecordsDropped, want)
			}
			if lost := st.RecordsDropped > 0; lost != tc.wantLoss {
				t.Errorf("dropped %d records (%d batches); loss expected: %v", st.RecordsDropped, st.BatchesDropped, tc.wantLoss)
			}
			t.Logf("outage %v: written %d, dropped %d, stats %+v", outage, written, st.RecordsDropped, st)
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// lossyRelay forwards datagrams to dst and drops every nth.
type lossyRelay struct {
	pc       net.PacketConn
	mu       sync.Mutex
	n, seen  int
	dropped  int
	lastDrop bool
}

func newLossyRelay(t *testing.T, dst string, every int) *lossyRelay {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = pc.(*net.UDPConn).SetReadBuffer(4 << 20)
	out, err := net.Dial("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	r := &lossyRelay{pc: pc, n: every}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.seen++
			drop := r.seen%r.n == 0
			r.lastDrop = drop
			if drop {
				r.dropped++
			}
			r.mu.Unlock()
			if !drop {
				out.Write(buf[:n])
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); out.Close(); <-done })
	return r
}

func (r *lossyRelay) state() (seen, dropped int, lastDrop bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen, r.dropped, r.lastDrop
}

// TestUDPLossIsCounted drops every 10th datagram on the way: the collector's count of missing
// sequence numbers equals the number dropped.
func TestUDPLossIsCounted(t *testing.T) {
	snk := newSink()
	in := startCollector(t, collectorConfig(t), snk)
	relay := newLossyRelay(t, in.Addrs().UDP, 10)
	cfg := shipperConfig(t, ingest.Addrs{UDP: relay.pc.LocalAddr().String()}, transport.UDP)
	cfg.Window = 4 // gentle bursts: only the relay may lose datagrams, not a socket buffer
	s, _ := startShipper(t, cfg)
	for i := range 80 {
		s.Write(records(i*125, 125))
		time.Sleep(10 * time.Millisecond)
	}
	waitDrained(t, s, 20*time.Second)
	// A lost last datagram is only noticed when a later one arrives: send until one passes.
	for i := 0; ; i++ {
		time.Sleep(60 * time.Millisecond)
		if _, _, last := relay.state(); !last {
			break
		}
		s.Write(records(100000+i, 1))
		waitDrained(t, s, 5*time.Second)
	}
	seen, dropped, _ := relay.state()
	var missing uint64
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if missing = in.Missing()["node-test"]; missing >= uint64(dropped) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	missing = in.Missing()["node-test"]
	if dropped == 0 || missing != uint64(dropped) {
		t.Errorf("relay dropped %d of %d datagrams; collector counts %d missing", dropped, seen, missing)
	}
	t.Logf("%d datagrams, %d dropped, %d missing at the collector", seen, dropped, missing)
}
