package exporter

import (
	"context"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/exporter/identity"
	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
	"github.com/flowscope/flowscope/internal/testgate"
	"github.com/flowscope/flowscope/internal/testnet"
)

// capture is a Sink that keeps everything.
type capture struct {
	mu   sync.Mutex
	recs []flow.Record
	sums []Summary
	hbs  []flowbatch.Heartbeat
}

func (c *capture) Write(recs []flow.Record) error {
	c.mu.Lock()
	c.recs = append(c.recs, recs...)
	c.mu.Unlock()
	return nil
}

func (c *capture) Heartbeat(h flowbatch.Heartbeat) error {
	c.mu.Lock()
	c.hbs = append(c.hbs, h)
	c.mu.Unlock()
	return nil
}

func (c *capture) Summary(s Summary) error {
	c.mu.Lock()
	c.sums = append(c.sums, s)
	c.mu.Unlock()
	return nil
}

// matching returns the records that satisfy keep.
func (c *capture) matching(keep func(*flow.Record) bool) []flow.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []flow.Record
	for i := range c.recs {
		if keep(&c.recs[i]) {
			out = append(out, c.recs[i])
		}
	}
	return out
}

// waitFor polls until at least n records satisfy keep, or fails the test after timeout.
func (c *capture) waitFor(t *testing.T, n int, timeout time.Duration, keep func(*flow.Record) bool) []flow.Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := c.matching(keep)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d matching records after %v, want %d", len(got), timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type running struct {
	cap *capture
	x   *Exporter
	tr  *tracer.Tracer
}

// startExporter loads the real programs and runs the exporter loop until the test ends.
func startExporter(t *testing.T, cfg Config, tcfg tracer.Config) *running {
	t.Helper()
	return startExporterSink(t, cfg, tcfg, nil)
}

// startExporterSink is startExporter writing to sink (nil: a capture).
func startExporterSink(t *testing.T, cfg Config, tcfg tracer.Config, sink Sink) *running {
	t.Helper()
	testgate.BPF(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if tcfg.CgroupV2 == "" {
		tcfg.CgroupV2, _ = testnet.V2Mount()
		tcfg.ProcessInfo = true
	}
	tr, err := tracer.Open(tcfg, log)
	if err != nil {
		t.Fatalf("opening the tracer: %v", err)
	}
	if cfg.SummaryEvery == 0 {
		cfg.SummaryEvery = -1
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	cfg.Table.ResetEvents = true
	c := &capture{}
	if sink == nil {
		sink = c
	}
	res, err := identity.NewResolver(identity.Config{}, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	x, err := New(cfg, tr, res, sink, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("exporter loop: %v", err)
		}
		tr.Close()
	})
	return &running{cap: c, x: x, tr: tr}
}

// endpoint is where a test socket lives: a namespace and a cgroup.
type endpoint struct {
	ns *testnet.Netns
	cg *testnet.Cgroup
}

// in runs fn in the endpoint's namespace and cgroup, so sockets created there belong to both.
func (e endpoint) in(t *testing.T, fn func() error) {
	t.Helper()
	err := e.ns.Do(func() error {
		if e.cg == nil {
			return fn()
		}
		return e.cg.Do(fn)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// listen opens a TCP listener on addr:0 at the server endpoint.
func listen(t *testing.T, srv endpoint, addr netip.Addr) net.Listener {
	t.Helper()
	var ln net.Listener
	srv.in(t, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	})
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dial connects from the client endpoint.
func dial(t *testing.T, cli endpoint, to string, timeout time.Duration) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	var derr error
	cli.in(t, func() error {
		c, derr = (&net.Dialer{Timeout: timeout}).Dial("tcp", to)
		return nil
	})
	return c, derr
}

// exchange runs one connection: the client sends up bytes, the server answers down bytes, the
// client closes first, the server closes after reading the FIN. It returns the client's port.
func exchange(t *testing.T, cli, srv endpoint, addr netip.Addr, up, down int64) (clientPort, serverPort uint16) {
	t.Helper()
	ln := listen(t, srv, addr)
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		if err := testnet.ReadN(c, up); err != nil {
			served <- err
			return
		}
		if err := testnet.WriteN(c, down); err != nil {
			served <- err
			return
		}
		_, err = testnet.ReadToEOF(c)
		served <- err
	}()
	c, err := dial(t, cli, ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := testnet.WriteN(c, up); err != nil {
		t.Fatal(err)
	}
	if err := testnet.ReadN(c, down); err != nil {
		t.Fatal(err)
	}
	clientPort = uint16(c.LocalAddr().(*net.TCPAddr).Port)
	serverPort = uint16(ln.Addr().(*net.TCPAddr).Port)
	c.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	return clientPort, serverPort
}

// sides waits for the final records of both sides of the connection between the two ports and
// returns each side's records summed (a connection may also have interim records: the sum of
// its records is its total), with the final record's other fields.
func sides(t *testing.T, r *running, cport, sport uint16) (client, server flow.Record) {
	t.Helper()
	match := func(f *flow.Record) bool {
		return (f.LocalPort == cport && f.RemotePort == sport) || (f.LocalPort == sport && f.RemotePort == cport)
	}
	r.cap.waitFor(t, 2, 10*time.Second, func(f *flow.Record) bool { return !f.Interim && match(f) })
	var cs, ss []flow.Record
	for _, f := range r.cap.matching(match) {
		if f.LocalPort == cport {
			cs = append(cs, f)
		} else {
			ss = append(ss, f)
		}
	}
	return sumRecords(t, cs), sumRecords(t, ss)
}

// sumRecords adds up one side's records into its final record.
func sumRecords(t *testing.T, recs []flow.Record) flow.Record {
	t.Helper()
	var sum flow.Record
	for _, f := range recs {
		if f.Interim {
			t.Logf("interim record before the close (start_known=%v): %+v", f.StartKnown, f)
			sum.BytesSent += f.BytesSent
			sum.BytesReceived += f.BytesReceived
			sum.Retransmits += f.Retransmits
			sum.BytesRetransmitted += f.BytesRetransmitted
			sum.SegsSent += f.SegsSent
			sum.SegsReceived += f.SegsReceived
			continue
		}
		fin := f
		fin.BytesSent += sum.BytesSent
		fin.BytesReceived += sum.BytesReceived
		fin.Retransmits += sum.Retransmits
		fin.BytesRetransmitted += sum.BytesRetransmitted
		fin.SegsSent += sum.SegsSent
		fin.SegsReceived += sum.SegsReceived
		sum = fin
	}
	return sum
}
