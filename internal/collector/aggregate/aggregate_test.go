package aggregate

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/sketch"
	"github.com/flowscope/flowscope/internal/store"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func pod(ns, wl, node string) flow.Endpoint {
	return flow.Endpoint{Kind: flow.EndpointPod, Namespace: ns, Workload: wl, Node: node}
}

func conn(key string, end time.Time, interim bool, out flow.Outcome, bytes uint64) flow.Conn {
	s := pod("shop", "api", "n2")
	s.Port = 8080
	return flow.Conn{ConnKey: key, Start: t0, End: end, Interim: interim, Client: pod("shop", "web", "n1"), Server: s,
		BytesClientToServer: bytes, BytesServerToClient: 2 * bytes, ClientSrttUs: 500, Outcome: out}
}

func TestCountsEachConnectionOnceAcrossIntervals(t *testing.T) {
	a := New(Config{Grace: 10 * time.Second})
	conns := []flow.Conn{
		conn("a", t0.Add(10*time.Second), true, flow.Open, 100),
		conn("a", t0.Add(70*time.Second), true, flow.Open, 100),
		conn("a", t0.Add(80*time.Second), false, flow.OK, 100),
		conn("b", t0.Add(20*time.Second), false, flow.Refused, 0),
		conn("c", t0.Add(30*time.Second), false, flow.Timeout, 0),
		conn("d", t0.Add(40*time.Second), false, flow.Reset, 5),
		conn("e", t0.Add(50*time.Second), false, flow.Aborted, 5),
	}
	for i, c := range conns {
		a.Add(c, uint64(i+1))
	}
	rows, wm := a.Flush(t0.Add(75*time.Second), false) // minute 0 closed, minute 1 open
	if wm != 1 {
		// minute 1 holds seq 2 and 3: everything up to 1 is flushed
		t.Errorf("watermark %d, want 1", wm)
	}
	edge := store.EdgeKey{Src: "shop/web", Dst: "shop/api", Port: 8080, Direction: store.Internal}
	want := store.Counters{Flows: 5, BytesClientToServer: 110, BytesServerToClient: 220, Opened: 5, Closed: 4,
		Refused: 1, Timeout: 1, Reset: 2, PeakBytesPerMinute: 330}
	got := map[store.EdgeKey]store.Counters{}
	for _, r := range rows {
		got[r.Key] = r.Counters
	}
	if diff := cmp.Diff(want, got[edge]); diff != "" {
		t.Errorf("minute 0 (-want +got):\n%s", diff)
	}
	if _, ok := got[store.EdgeKey{Src: "node/n1", Direction: store.NodeOut}]; !ok {
		t.Errorf("no node totals in %v", got)
	}
	rows, wm = a.Flush(t0.Add(time.Hour), false)
	if wm != 7 || len(rows) != 3 {
		t.Fatalf("second flush: %d rows, watermark %d", len(rows), wm)
	}
	if c := rows[0].Counters; c.Opened != 0 || c.Closed != 1 || c.Flows != 2 {
		t.Errorf("minute 1: %+v, want the open connection's later records only (not opened again)", c)
	}
}

func TestRollupMergesCountersPeaksAndSketches(t *testing.T) {
	k := store.EdgeKey{Src: "a/x", Dst: "a/y", Port: 80, Direction: store.Internal}
	mk := func(min int, bytes uint64, rtt uint32) store.EdgeRow {
		r := store.EdgeRow{Time: t0.Add(time.Duration(min) * time.Minute), Key: k,
			Counters: store.Counters{Flows: 1, BytesClientToServer: bytes, PeakBytesPerMinute: bytes}}
		r.RTT.Add(rtt)
		return r
	}
	got := Rollup([]store.EdgeRow{mk(0, 10, 100), mk(1, 30, 1000), mk(59, 20, 10000), mk(60, 5, 5)}, time.Hour)
	var sk sketch.Sketch
	for _, v := range []uint32{100, 1000, 10000} {
		sk.Add(v)
	}
	want := []store.EdgeRow{
		{Time: t0, Key: k, Counters: store.Counters{Flows: 3, BytesClientToServer: 60, PeakBytesPerMinute: 30}, RTT: sk},
		mk(60, 5, 5),
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b sketch.Sketch) bool {
		return a.Count() == b.Count() && a.Quantile(0.5) == b.Quantile(0.5) && a.Quantile(1) == b.Quantile(1)
	}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("rollup (-want +got):\n%s", diff)
	}
}

func TestKeyLimitIsCounted(t *testing.T) {
	a := New(Config{MaxKeys: 2})
	for i, ns := range []string{"a", "b", "c"} {
		c := conn("", t0, false, flow.OK, 1)
		c.Client.Namespace, c.Client.Node, c.Server.Node = ns, "", ""
		a.Add(c, uint64(i+1))
	}
	if s := a.Stats(); s.DroppedKeys != 1 || s.Keys != 2 {
		t.Errorf("stats %+v, want 1 dropped, 2 keys", s)
	}
}

func TestOpenRowsAreTheMinutesFlushWouldKeep(t *testing.T) {
	a := New(Config{Grace: 10 * time.Second})
	a.Add(conn("a", t0.Add(30*time.Second), false, flow.OK, 1), 1) // minute 0
	a.Add(conn("b", t0.Add(65*time.Second), false, flow.OK, 2), 2) // minute 1
	now := t0.Add(75 * time.Second)                                // minute 0 closed, minute 1 open
	keys := len(Keys(conn("a", t0, false, flow.OK, 1)))            // the edge and its node totals
	open := a.OpenRows(now)
	if len(open) != keys {
		t.Fatalf("%d open rows, want %d", len(open), keys)
	}
	for _, r := range open {
		if !r.Time.Equal(t0.Add(time.Minute)) || r.BytesClientToServer != 2 || r.RTT.Count() != 1 {
			t.Errorf("open row %+v, want minute 1's", r)
		}
	}
	if again := a.OpenRows(now); len(again) != keys {
		t.Errorf("OpenRows forgot the open minute: %+v", again)
	}
	rows, _ := a.Flush(now, false)
	if len(rows) != keys || !rows[0].Time.Equal(t0) {
		t.Errorf("Flush returned %+v, want minute 0 alone", rows)
	}
}
