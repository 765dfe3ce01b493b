package depgraph

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/sketch"
	"github.com/flowscope/flowscope/internal/store"
)

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	var rtt sketch.Sketch
	rtt.Add(250)
	g := Graph{From: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 2, 11, 30, 0, 5, time.UTC),
		Nodes: []store.Node{{ID: "a/x", Kind: flow.EndpointPod, Namespace: "a", Name: "x", Labels: map[string]string{"app": "x"}}},
		Edges: []Edge{
			NewEdge(store.Edge{EdgeKey: store.EdgeKey{Src: "a/x", Dst: "b/y", Port: 80, Direction: store.Internal},
				Counters: store.Counters{Flows: 3, BytesClientToServer: 1 << 40, Opened: 3, Closed: 3, Refused: 1, Retransmits: 7, PeakBytesPerMinute: 9}, RTT: &rtt}),
			NewEdge(store.Edge{EdgeKey: store.EdgeKey{Src: "unattributed:no-owner", Dst: "b/<odd> \"name\"\u00e9", Service: "b/svc/y", Port: 8080, Direction: store.Ingress},
				Counters: store.Counters{Flows: 10_000_000, Closed: 10_000_000, Timeout: 1}}),
			{EdgeKey: store.EdgeKey{Src: "n", Dst: "m", Direction: store.Egress}, Health: Idle},
		},
	}
	fast, err := g.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	slow, _ := json.Marshal(g)
	var a, b any
	if err := json.Unmarshal(fast, &a); err != nil {
		t.Fatalf("AppendJSON wrote invalid JSON: %v\n%s", err, fast)
	}
	_ = json.Unmarshal(slow, &b)
	if diff := cmp.Diff(b, a); diff != "" {
		t.Errorf("AppendJSON differs from encoding/json (-want +got):\n%s", diff)
	}
}

// TestWriteJSONStreamsTheSameBytes: the streamed answer, written in pieces, is AppendJSON's.
func TestWriteJSONStreamsTheSameBytes(t *testing.T) {
	g := Graph{Nodes: []store.Node{}}
	for i := range 3000 {
		g.Edges = append(g.Edges, NewEdge(store.Edge{EdgeKey: store.EdgeKey{Src: "ns/a", Dst: "ns/b", Port: uint16(i), Direction: store.Internal},
			Counters: store.Counters{Flows: uint64(i), Closed: 3, Reset: 1}}))
	}
	want, err := g.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	var w countingWriter
	if err := g.WriteJSON(&w); err != nil {
		t.Fatal(err)
	}
	if w.writes < 3 {
		t.Errorf("%d bytes written in %d pieces, want several", len(want), w.writes)
	}
	if string(w.b) != string(want) {
		t.Errorf("WriteJSON differs from AppendJSON")
	}
}

type countingWriter struct {
	b      []byte
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	w.b = append(w.b, p...)
	return len(p), nil
}
