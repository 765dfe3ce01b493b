package pipeline_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/collector/attribute"
	"github.com/flowscope/flowscope/internal/collector/ingest"
	"github.com/flowscope/flowscope/internal/collector/pipeline"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/livedemo"
	"github.com/flowscope/flowscope/internal/store"
)

// memStore keeps written connections; of the queries only Nodes and Coverage answer.
type memStore struct {
	store.Querier
	mu    sync.Mutex
	conns []flow.Conn
}

func (m *memStore) Write(_ context.Context, c []flow.Conn) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.conns = append(m.conns, c...)
	return nil
}

func (m *memStore) Nodes(context.Context) ([]store.Node, error) { return []store.Node{}, nil }
func (m *memStore) Coverage(context.Context) (store.Coverage, error) {
	return store.Coverage{}, nil
}

func (m *memStore) written() []flow.Conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]flow.Conn(nil), m.conns...)
}

func config(t *testing.T, clock func() time.Time) pipeline.Config {
	t.Helper()
	in := ingest.DefaultConfig()
	in.GRPCListen, in.HTTPSListen, in.UDPListen = "127.0.0.1:0", "", ""
	in.InsecurePlaintext, in.SpoolDir = true, t.TempDir()
	return pipeline.Config{
		Ingest: in, HTTPListen: "127.0.0.1:0", Now: clock,
		Attribute: attribute.Config{Window: 5 * time.Second, JoinWait: 2 * time.Second, Tick: 100 * time.Millisecond},
	}
}

// TestDemoThroughTransport replays a minute of the demo, then feeds it live through the real
// transport and ingest: connections of both phases reach the store, and the API answers.
func TestDemoThroughTransport(t *testing.T) {
	clock := livedemo.NewClock(time.Now(), time.Now)
	st := &memStore{}
	p, err := pipeline.New(config(t, clock.Now), st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	live := make(chan time.Time, 1)
	cfg := livedemo.Config{Cluster: livedemo.ClusterConfig(time.Minute), History: time.Minute, GRPCAddr: p.Addrs().GRPC}
	done := make(chan error, 1)
	go func() { done <- livedemo.Run(ctx, cfg, clock, p, func(time.Time) { live <- time.Now() }) }()
	var wentLive time.Time
	select {
	case wentLive = <-live:
	case err := <-done:
		t.Fatalf("demo ended before going live: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the demo's history was not replayed within 60 s")
	}
	replayed := len(st.written())
	if replayed == 0 {
		t.Fatal("no connection written during the replay")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := 0
		for _, c := range st.written() {
			if c.Start.After(wentLive) {
				n++
			}
		}
		if n > 20 {
			t.Logf("%d connections replayed, %d live ones through the transport", replayed, n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d live connections reached the store in 30 s", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	res, err := http.Get("http://" + p.HTTPAddr() + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var status struct {
		APIVersion int `json:"api_version"`
	}
	if err := json.NewDecoder(res.Body).Decode(&status); err != nil || status.APIVersion != 1 {
		t.Fatalf("status: %v %+v", err, status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v", err)
	}
}

func TestPortTakenFailsClearly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := config(t, time.Now)
	cfg.HTTPListen = ln.Addr().String()
	p, err := pipeline.New(cfg, &memStore{})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Start(t.Context())
	if err == nil {
		_ = p.Stop()
		t.Fatal("Start succeeded on a port already taken")
	}
	if want := "listening for the API on " + ln.Addr().String(); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}
