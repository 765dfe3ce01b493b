package ingest

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// collect is a consumer that remembers what it got.
type collect struct {
	mu      sync.Mutex
	entries []Entry
	ch      chan struct{}
}

func newCollect() *collect { return &collect{ch: make(chan struct{}, 1)} }

func (c *collect) Name() string { return "test" }
func (c *collect) Consume(_ context.Context, e Entry) error {
	c.mu.Lock()
	c.entries = append(c.entries, e)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
	return nil
}

func (c *collect) waitFor(t *testing.T, n int) []Entry {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.entries) >= n {
			defer c.mu.Unlock()
			return append([]Entry(nil), c.entries...)
		}
		c.mu.Unlock()
		select {
		case <-c.ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("consumer got %d entries, want %d", len(c.entries), n)
		}
	}
}

func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.GRPCListen, cfg.HTTPSListen, cfg.UDPListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.SpoolDir = t.TempDir()
	cfg.InsecurePlaintext = true
	return cfg
}

func startIngest(t *testing.T, cfg Config, consumers ...Consumer) *Ingest {
	t.Helper()
	return startIngestWith(t, cfg, prometheus.NewRegistry(), consumers...)
}

// startIngestWith starts an ingest registering its metrics in reg; Stop is safe to call twice.
func startIngestWith(t *testing.T, cfg Config, reg *prometheus.Registry, consumers ...Consumer) *Ingest {
	t.Helper()
	in, err := New(cfg, reg, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range consumers {
		in.AddConsumer(c)
	}
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Stop() })
	return in
}

func encodeBatch(t testing.TB, exporter, boot string, seq uint64, n int) []byte {
	t.Helper()
	b := &flowbatch.Batch{Header: flowbatch.Header{Major: 1, ExporterID: exporter, BootID: boot, Sequence: seq},
		Records: flowbatch.SampleRecords(n, time.Now())}
	data, err := flowbatch.NewEncoder().Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func grpcStream(t *testing.T, addr string) grpc.ClientStream {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(flowbatch.GRPCCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	st, err := conn.NewStream(t.Context(), &flowv1.FlowCollector_ServiceDesc.Streams[0], flowv1.FlowCollector_Stream_FullMethodName)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sendRaw(t *testing.T, st grpc.ClientStream, data []byte) *flowv1.Ack {
	t.Helper()
	if err := st.SendMsg(&flowbatch.Raw{Data: data}); err != nil {
		t.Fatal(err)
	}
	ack := &flowv1.Ack{}
	if err := st.RecvMsg(ack); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return ack
}

func TestGRPCAcceptDedupeConsume(t *testing.T) {
	c := newCollect()
	in := startIngest(t, testConfig(t), c)
	st := grpcStream(t, in.Addrs().GRPC)
	for seq := uint64(1); seq <= 3; seq++ {
		if ack := sendRaw(t, st, encodeBatch(t, "e1", "b1", seq, 10)); ack.Status != flowv1.Ack_STATUS_ACCEPTED || ack.Sequence != seq {
			t.Fatalf("seq %d: %v", seq, ack)
		}
	}
	if ack := sendRaw(t, st, encodeBatch(t, "e1", "b1", 2, 10)); ack.Status != flowv1.Ack_STATUS_DUPLICATE {
		t.Fatalf("duplicate: %v", ack)
	}
	bad := encodeBatch(t, "e1", "b1", 9, 10)
	if ack := sendRaw(t, st, bad[:len(bad)-3]); ack.Status != flowv1.Ack_STATUS_REJECTED || ack.Reason != flowv1.RejectReason_REJECT_REASON_MALFORMED {
		t.Fatalf("truncated: %v", ack)
	}
	got := c.waitFor(t, 3)
	for i, e := range got {
		if e.Offset != uint64(i) || e.Batch.Sequence != uint64(i+1) || len(e.Batch.Records) != 10 {
			t.Errorf("entry %d: offset %d seq %d records %d", i, e.Offset, e.Batch.Sequence, len(e.Batch.Records))
		}
	}
}

func TestRestartKeepsDedupeAndOffsets(t *testing.T) {
	cfg := testConfig(t)
	c := newCollect()
	in := startIngestWith(t, cfg, prometheus.NewRegistry(), c)
	for seq := uint64(1); seq <= 5; seq++ {
		if a := in.Accept(TransportGRPC, encodeBatch(t, "e1", "b1", seq, 3)); a.Status != flowv1.Ack_STATUS_ACCEPTED {
			t.Fatal(a)
		}
	}
	c.waitFor(t, 5)
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	c2 := newCollect()
	in2 := startIngest(t, cfg, c2)
	if a := in2.Accept(TransportGRPC, encodeBatch(t, "e1", "b1", 3, 3)); a.Status != flowv1.Ack_STATUS_DUPLICATE {
		t.Fatalf("after restart: %v", a)
	}
	if a := in2.Accept(TransportGRPC, encodeBatch(t, "e1", "b1", 6, 3)); a.Status != flowv1.Ack_STATUS_ACCEPTED {
		t.Fatal(a)
	}
	got := c2.waitFor(t, 1)
	if len(got) != 1 || got[0].Offset != 5 || got[0].Batch.Sequence != 6 {
		t.Errorf("after restart the consumer got %+v", got)
	}
}

func protojsonMarshal(m *flowv1.Batch) ([]byte, error) { return protojson.Marshal(m) }

func TestExporterCountersExported(t *testing.T) {
	cfg := testConfig(t)
	reg := prometheus.NewRegistry()
	in, err := New(cfg, reg, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Stop() })
	b := &flowbatch.Batch{Header: flowbatch.Header{Major: 1, ExporterID: "e", BootID: "b", Sequence: 1},
		Counters: []flowbatch.Counter{{Name: "ring_lost", Value: 4}}}
	data, err := flowbatch.NewEncoder().Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if a := in.Accept(TransportGRPC, data); a.Status != flowv1.Ack_STATUS_ACCEPTED {
		t.Fatal(a)
	}
	if v := counterValue(t, reg, "flowscope_collector_exporter_counters_total"); v != 4 {
		t.Errorf("exporter counters %v, want 4", v)
	}
}
