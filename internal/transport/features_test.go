package transport_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/collector/ingest"
	"github.com/flowscope/flowscope/internal/exporter/adapt"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
	"github.com/flowscope/flowscope/internal/transport"
)

// batches remembers whole batches.
type batches struct {
	mu sync.Mutex
	bs []*flowbatch.Batch
}

func (b *batches) Name() string { return "batches" }
func (b *batches) Consume(_ context.Context, e ingest.Entry) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bs = append(b.bs, e.Batch)
	return nil
}

func (b *batches) find(f func(*flowbatch.Batch) bool) *flowbatch.Batch {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, x := range b.bs {
		if f(x) {
			return x
		}
	}
	return nil
}

func (b *batches) waitFor(t *testing.T, what string, f func(*flowbatch.Batch) bool) *flowbatch.Batch {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if x := b.find(f); x != nil {
			return x
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no batch with %s arrived", what)
	return nil
}

func TestHeartbeatAndCountersArrive(t *testing.T) {
	bs := &batches{}
	in := startCollector(t, collectorConfig(t), bs)
	s, _ := startShipper(t, shipperConfig(t, in.Addrs(), transport.GRPC))
	now := time.Now()
	s.Heartbeat(flowbatch.Heartbeat{Node: "node-test", Time: now, Complete: true, Ownerships: []flowbatch.Ownership{{
		Addr: netip.MustParseAddr("10.1.2.3"), Namespace: "shop", PodName: "cart-0", From: now.Add(-time.Minute),
		Workload: flow.Workload{Kind: flow.KindPod, PodUID: "uid-1", ContainerID: "c1", CgroupPath: "/kubepods/pod-uid-1/c1"},
	}}})
	s.AddCounters(map[string]uint64{"ring_lost": 3, "evictions": 2})
	s.Write(records(0, 10))
	hb := bs.waitFor(t, "a heartbeat", func(b *flowbatch.Batch) bool { return b.Heartbeat != nil })
	o := hb.Heartbeat.Ownerships[0]
	if !hb.Heartbeat.Complete || o.PodName != "cart-0" || o.Workload.PodUID != "uid-1" || o.Addr.String() != "10.1.2.3" {
		t.Errorf("heartbeat %+v", hb.Heartbeat)
	}
	bs.waitFor(t, "the counters", func(b *flowbatch.Batch) bool {
		got := map[string]uint64{}
		for _, c := range b.Counters {
			got[c.Name] = c.Value
		}
		return got["ring_lost"] == 3 && got["evictions"] == 2
	})
	if b := bs.find(func(b *flowbatch.Batch) bool { return b.BootID != s.BootID() || b.ExporterID != "node-test" }); b != nil {
		t.Errorf("batch with identity %+v", b.Header)
	}
}

// TestAutoSwitchesWhenTheChosenTransportFails: gRPC is chosen while it answers; when it is
// gone, auto moves to HTTPS, logs and counts the switch, and loses nothing.
func TestAutoSwitchesWhenTheChosenTransportFails(t *testing.T) {
	snk := newSink()
	grpcOnly := collectorConfig(t)
	grpcOnly.HTTPSListen, grpcOnly.UDPListen = "", ""
	first := startCollector(t, grpcOnly)
	httpsOnly := collectorConfig(t)
	httpsOnly.GRPCListen, httpsOnly.UDPListen = "", ""
	second := startCollector(t, httpsOnly, snk)

	cfg := shipperConfig(t, ingest.Addrs{GRPC: first.Addrs().GRPC, HTTPS: second.Addrs().HTTPS}, transport.Auto)
	cfg.SwitchAfter = 2
	s, reg := startShipper(t, cfg)
	if st := s.Stats(); st.Transport != transport.GRPC {
		t.Fatalf("auto chose %s, want grpc", st.Transport)
	}
	first.Stop()
	s.Write(records(0, 1000))
	snk.waitTotal(t, 1000, 20*time.Second)
	if st := s.Stats(); st.Transport != transport.HTTPS || st.Switches == 0 || st.RecordsDropped != 0 {
		t.Errorf("after gRPC went away: %+v", st)
	}
	if n := metricSum(t, reg, "flowscope_transport_switches_total"); n == 0 {
		t.Error("switch not counted")
	}
}

// TestAutoReturnsToThePreferredTransport: after a switch away from gRPC, auto goes back to
// it once it answers again.
func TestAutoReturnsToThePreferredTransport(t *testing.T) {
	snk := newSink()
	cc := collectorConfig(t)
	cc.UDPListen = ""
	port := freePort(t)
	cc.GRPCListen = fmt.Sprintf("127.0.0.1:%d", port)
	httpsOnly := cc
	httpsOnly.GRPCListen = ""
	second := startCollector(t, httpsOnly, snk)
	cfg := shipperConfig(t, ingest.Addrs{GRPC: cc.GRPCListen, HTTPS: second.Addrs().HTTPS}, transport.Auto)
	cfg.SwitchAfter, cfg.ReturnAfter = 2, 200*time.Millisecond
	s, _ := startShipper(t, cfg) // gRPC is down: auto starts on HTTPS
	if st := s.Stats(); st.Transport != transport.HTTPS {
		t.Fatalf("auto chose %s with gRPC down", st.Transport)
	}
	s.Write(records(0, 100))
	snk.waitTotal(t, 100, 10*time.Second)
	// Bring gRPC up (a collector on the same spool would be usual; a second one will do).
	grpcOnly := collectorConfig(t)
	grpcOnly.GRPCListen, grpcOnly.HTTPSListen, grpcOnly.UDPListen = cc.GRPCListen, "", ""
	snk2 := newSink()
	startCollector(t, grpcOnly, snk2)
	s.Heartbeat(flowbatch.Heartbeat{Node: "node-test", Time: time.Now()}) // something to send
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Transport != transport.GRPC && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		s.Write(records(1000, 1))
	}
	if st := s.Stats(); st.Transport != transport.GRPC {
		t.Errorf("still on %s after gRPC came back", st.Transport)
	}
}

func TestAutoPrefersUDPOnAConstrainedInstanceThatAllowsLoss(t *testing.T) {
	snk := newSink()
	in := startCollector(t, collectorConfig(t), snk)
	cfg := shipperConfig(t, in.Addrs(), transport.Auto)
	cfg.AllowLoss = true
	cfg.Instance = &adapt.Instance{NodeCores: 1, Cores: 1, MemoryBytes: 512 << 20}
	s, _ := startShipper(t, cfg)
	if st := s.Stats(); st.Transport != transport.UDP {
		t.Fatalf("auto chose %s, want udp", st.Transport)
	}
	s.Write(records(0, 200))
	snk.waitTotal(t, 200, 10*time.Second)
}

func TestWriteNeverBlocksAndCountsOverflow(t *testing.T) {
	// No collector at all: everything stays pending or buffered, then overflows.
	cfg := shipperConfig(t, ingest.Addrs{GRPC: "127.0.0.1:1"}, transport.GRPC)
	cfg.MaxPending, cfg.BufferBytes, cfg.BatchSize = 1000, 64<<10, 100
	s, _ := startShipper(t, cfg)
	start := time.Now()
	for i := range 200 {
		s.Write(records(i*100, 100))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("20,000 writes took %v", d)
	}
	time.Sleep(300 * time.Millisecond)
	st := s.Stats()
	if st.RecordsDropped == 0 || st.BufferBytes > 64<<10+32<<10 {
		t.Errorf("overflow not bounded or not counted: %+v", st)
	}
}

func TestDegradesUnderCPUPressure(t *testing.T) {
	bs := &batches{}
	snk := newSink()
	in := startCollector(t, collectorConfig(t), bs, snk)
	s, reg := startShipper(t, shipperConfig(t, in.Addrs(), transport.GRPC))
	now := time.Unix(1000, 0)
	var cpu time.Duration
	budget := adapt.NewBudget(0.01, time.Second, func() time.Duration { return cpu }, func() time.Time { return now })
	now, cpu = now.Add(time.Second), 500*time.Millisecond // half a core against 1%
	if budget.Tick() != adapt.Folding {
		t.Fatal("budget not exceeded")
	}
	s.SetBudget(budget)
	s.Write(records(0, 500))
	snk.waitTotal(t, 500, 10*time.Second)
	agg := bs.waitFor(t, "aggregates", func(b *flowbatch.Batch) bool { return len(b.Aggregates) > 0 })
	if agg.Aggregates[0].Flows != 500 || len(agg.Records) != 0 {
		t.Errorf("aggregate %+v", agg.Aggregates[0])
	}
	bs.waitFor(t, "the degradation counter", func(b *flowbatch.Batch) bool {
		for _, c := range b.Counters {
			if c.Name == transport.CounterDegradedFlows && c.Value == 500 {
				return true
			}
		}
		return false
	})
	if n := metricSum(t, reg, "flowscope_transport_degraded_flows_total"); n != 500 {
		t.Errorf("degraded flows metric %v", n)
	}
}

// TestInvalidRecordsCostOnlyThemselves: a record the collector would refuse is dropped and
// counted alone; its batch goes through.
func TestInvalidRecordsCostOnlyThemselves(t *testing.T) {
	snk := newSink()
	in := startCollector(t, collectorConfig(t), snk)
	s, _ := startShipper(t, shipperConfig(t, in.Addrs(), transport.GRPC))
	recs := records(0, 10)
	recs[3].RemoteAddr = netip.Addr{}
	recs[5].End = time.Time{}
	recs[6].Direction, recs[7].Start = "", time.Time{}
	s.Write(recs)
	snk.waitTotal(t, 8, 10*time.Second)
	if st := s.Stats(); st.RecordsDropped != 2 {
		t.Errorf("dropped %d, want the 2 invalid records", st.RecordsDropped)
	}
}

// TestStopDeliversWhatIsPending: records written just before Stop still reach the collector.
func TestStopDeliversWhatIsPending(t *testing.T) {
	snk := newSink()
	in := startCollector(t, collectorConfig(t), snk)
	cfg := shipperConfig(t, in.Addrs(), transport.GRPC)
	cfg.FlushInterval = time.Hour // only Stop's final cut can send them
	s, err := transport.New(cfg, prometheus.NewRegistry(), quiet(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.Write(records(0, 123))
	s.Stop()
	snk.waitTotal(t, 123, 10*time.Second)
	if st := s.Stats(); st.RecordsDropped != 0 || st.BatchesAcked == 0 {
		t.Errorf("after Stop: %+v", st)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]func(*transport.Config){
		"transport":        func(c *transport.Config) { c.Transport = "smoke" },
		"plaintext remote": func(c *transport.Config) { c.InsecurePlaintext, c.Collector = true, "192.0.2.1" },
		"half a key pair":  func(c *transport.Config) { c.ClientCert = "x.pem" },
		"udp size":         func(c *transport.Config) { c.UDPMaxBytes = 100 },
		"switch after":     func(c *transport.Config) { c.SwitchAfter = 0 },
		"port":             func(c *transport.Config) { c.GRPCPort = 70000 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := transport.DefaultConfig()
			c.InsecurePlaintext = true
			mutate(&c)
			if err := c.Validate(); err == nil {
				t.Error("accepted")
			}
		})
	}
	c := transport.DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
