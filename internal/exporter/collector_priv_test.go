package exporter

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/collector/ingest"
	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/transport"
)

// collected is an ingest consumer that keeps what it is given.
type collected struct {
	mu       sync.Mutex
	recs     []flow.Record
	counters map[string]uint64
}

func (c *collected) Name() string { return "test" }

func (c *collected) Consume(_ context.Context, e ingest.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, e.Batch.Records...)
	for _, k := range e.Batch.Counters {
		c.counters[k.Name] += k.Value
	}
	return nil
}

// TestKernelToCollector runs the real exporter into a real collector ingest over gRPC.
func TestKernelToCollector(t *testing.T) {
	cli, srv, p := pairEndpoints(t, false)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	icfg := ingest.DefaultConfig()
	icfg.GRPCListen, icfg.HTTPSListen, icfg.UDPListen = "127.0.0.1:0", "", ""
	icfg.SpoolDir, icfg.InsecurePlaintext = t.TempDir(), true
	in, err := ingest.New(icfg, prometheus.NewRegistry(), log, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	got := &collected{counters: map[string]uint64{}}
	in.AddConsumer(got)
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Stop() })
	_, port, _ := net.SplitHostPort(in.Addrs().GRPC)
	scfg := transport.DefaultConfig()
	scfg.GRPCPort, _ = strconv.Atoi(port)
	scfg.Transport, scfg.InsecurePlaintext, scfg.FlushInterval = transport.GRPC, true, 100*time.Millisecond
	scfg.NodeName = "test-node"
	sh, err := transport.New(scfg, prometheus.NewRegistry(), log, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := sh.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); sh.Stop() })

	startExporterSink(t, Config{SummaryEvery: 200 * time.Millisecond}, tracer.Config{}, NewShipSink(sh))
	cport, sport := exchange(t, cli, srv, p.B.Addr4, upBytes, downBytes)
	deadline := time.Now().Add(15 * time.Second)
	for {
		got.mu.Lock()
		var c, s *flow.Record
		for i := range got.recs {
			r := &got.recs[i]
			if r.LocalPort == cport && r.RemotePort == sport {
				c = r
			}
			if r.LocalPort == sport && r.RemotePort == cport {
				s = r
			}
		}
		finals := got.counters["records_final"]
		if c != nil && s != nil && finals >= 2 {
			if c.BytesSent != upBytes || c.BytesReceived != downBytes || s.BytesSent != downBytes || s.BytesReceived != upBytes ||
				c.Direction != flow.Client || s.Direction != flow.Server || c.Netns != p.A.Inum || s.Netns != p.B.Inum {
				t.Errorf("records at the collector: client %+v server %+v", *c, *s)
			}
			got.mu.Unlock()
			return
		}
		got.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("the collector did not receive both sides and the counters (counters %v)", got.counters)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
