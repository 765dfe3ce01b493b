package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowscope/flowscope/internal/collector/aggregate"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/store"
)

// closedStore answers Edges with fixed edges (the minutes it has written) and records queries.
type closedStore struct {
	store.Querier
	edges   []store.Edge
	nodes   []store.Node
	queries []store.EdgeQuery
}

func (s *closedStore) Write(context.Context, []flow.Conn) error { return nil }
func (s *closedStore) Edges(_ context.Context, q store.EdgeQuery) ([]store.Edge, error) {
	s.queries = append(s.queries, q)
	return append([]store.Edge(nil), s.edges...), nil
}
func (s *closedStore) Nodes(context.Context) ([]store.Node, error) { return s.nodes, nil }

func liveConn(client, server string, end time.Time, bytes uint64) flow.Conn {
	s := flow.Endpoint{Kind: flow.EndpointPod, Namespace: server, Workload: "srv", Port: 80}
	return flow.Conn{Start: end.Add(-time.Second), End: end, Client: flow.Endpoint{Kind: flow.EndpointPod, Namespace: client, Workload: "cli"},
		Server: s, BytesClientToServer: bytes, Outcome: flow.OK, ClientSrttUs: 100}
}

func TestLiveEdgesAddTheOpenMinutesOnly(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	now := t0.Add(90 * time.Second) // minute 0 closed (grace 20 s), minute 1 open
	cfg := aggregate.Config{Grace: 20 * time.Second}
	a := store.EdgeKey{Src: "a/cli", Dst: "b/srv", Port: 80, Direction: store.Internal}
	c := store.EdgeKey{Src: "c/cli", Dst: "d/srv", Port: 80, Direction: store.Internal}
	st := &closedStore{
		edges: []store.Edge{{EdgeKey: a, Counters: store.Counters{Flows: 1, Opened: 1, Closed: 1, BytesClientToServer: 1000}}},
		nodes: []store.Node{{ID: "a/cli", Namespace: "a"}, {ID: "b/srv", Namespace: "b"}, {ID: "c/cli", Namespace: "c"}, {ID: "d/srv", Namespace: "d"}},
	}
	live := newLiveEdges(cfg, func() time.Time { return now })
	sink := live.sink(st)
	conns := []flow.Conn{
		liveConn("a", "b", t0.Add(30*time.Second), 7),  // minute 0: the store's
		liveConn("a", "b", t0.Add(70*time.Second), 10), // minute 1: open
		liveConn("c", "d", t0.Add(80*time.Second), 5000),
	}
	if err := sink.Write(t.Context(), conns); err != nil {
		t.Fatal(err)
	}
	q := liveQuerier{Querier: st, live: live}
	rng := store.Range{From: t0, To: now}
	tests := []struct {
		name string
		q    store.EdgeQuery
		want map[store.EdgeKey]uint64 // bytes client → server
	}{
		{"all", store.EdgeQuery{Range: rng}, map[store.EdgeKey]uint64{a: 1010, c: 5000}},
		{"limit keeps the heaviest after merging", store.EdgeQuery{Range: rng, Limit: 1}, map[store.EdgeKey]uint64{c: 5000}},
		{"namespace", store.EdgeQuery{Range: rng, Namespaces: []string{"b"}}, map[store.EdgeKey]uint64{a: 1010}},
		{"workload", store.EdgeQuery{Range: rng, Workload: "d/srv"}, map[store.EdgeKey]uint64{a: 1000, c: 5000}},
		{"direction", store.EdgeQuery{Range: rng, Directions: []store.Direction{store.Egress}}, map[store.EdgeKey]uint64{a: 1000}},
		{"range before the open minute", store.EdgeQuery{Range: store.Range{From: t0, To: t0.Add(time.Minute)}}, map[store.EdgeKey]uint64{a: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edges, err := q.Edges(t.Context(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			got := map[store.EdgeKey]uint64{}
			for _, e := range edges {
				got[e.EdgeKey] = e.BytesClientToServer
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("edges (-want +got):\n%s", d)
			}
		})
	}
	// Once the store's rule closes minute 1, the live view forgets it.
	now = t0.Add(2*time.Minute + 21*time.Second)
	if rows := live.rows(rng); len(rows) != 0 {
		t.Errorf("live rows after the minute closed: %v", rows)
	}
	if keys := live.agg.Stats().Keys; keys != 0 {
		t.Errorf("the live view still holds %d keys of closed minutes", keys)
	}
}
