package duckdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowscope/flowscope/internal/collector/aggregate"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowgen"
	"github.com/flowscope/flowscope/internal/store"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

func open(t *testing.T, dir string, clk *clock) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{Dir: dir, Now: clk.now, MinFreeBytes: 1, FlushEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// truth aggregates conns in memory: what the store must answer.
func truth(conns []flow.Conn) map[store.EdgeKey]store.Counters {
	a := aggregate.New(aggregate.Config{})
	for i, c := range conns {
		a.Add(c, uint64(i+1))
	}
	rows, _ := a.Flush(time.Time{}, true)
	out := map[store.EdgeKey]store.Counters{}
	for _, r := range rows {
		if r.Key.Direction >= store.NodeOut {
			continue
		}
		c := out[r.Key]
		c.Add(r.Counters)
		c.PeakBytesPerMinute = 0
		out[r.Key] = c
	}
	return out
}

func edgesMap(edges []store.Edge) map[store.EdgeKey]store.Counters {
	out := map[store.EdgeKey]store.Counters{}
	for _, e := range edges {
		e.PeakBytesPerMinute = 0
		out[e.EdgeKey] = e.Counters
	}
	return out
}

// load writes conns ending over [t0, t0+span) in batches, advancing the clock and running
// maintenance as a collector would.
func load(t *testing.T, s *Store, clk *clock, conns []flow.Conn) {
	t.Helper()
	const batch = 500
	for i := 0; i < len(conns); i += batch {
		b := conns[i:min(i+batch, len(conns))]
		clk.set(b[len(b)-1].End.Add(time.Second))
		if err := s.Write(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		if err := s.Maintain(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// history returns a store holding n flowgen.Small conns over span from t0, loaded as a
// collector would, then maintained after the clock moved past by after (so levels roll up).
func history(t *testing.T, span time.Duration, n int, after time.Duration) (*Store, []flow.Conn) {
	t.Helper()
	clk := &clock{t: t0}
	s := open(t, t.TempDir(), clk)
	t.Cleanup(func() { s.Close() })
	conns := flowgen.New(flowgen.Small).Conns(t0, span, n)
	load(t, s, clk, conns)
	clk.add(after)
	if err := s.Maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, conns
}

func TestEdgesMatchTruthAcrossMinuteAndHourLevels(t *testing.T) {
	s, conns := history(t, 150*time.Minute, 30000, 2*time.Hour)
	for _, l := range s.levels {
		if got := time.Unix(l.rolled.Load()*60, 0).UTC(); got.Before(t0.Add(150 * time.Minute).Truncate(l.step())) {
			t.Fatalf("%s rolled up until %s only", l.table, got)
		}
	}
	r := store.Range{From: t0, To: t0.Add(150 * time.Minute)}
	edges, err := s.Edges(t.Context(), store.EdgeQuery{Range: r})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(truth(conns), edgesMap(edges)); diff != "" {
		t.Errorf("edges over hours+minutes differ from truth (-want +got):\n%s", diff)
	}
	// Ranges not aligned to hours mix hour, ten-minute and minute rows.
	for _, w := range [][2]time.Duration{{70 * time.Minute, 95 * time.Minute}, {7 * time.Minute, 143 * time.Minute},
		{13 * time.Minute, 17 * time.Minute}, {50 * time.Minute, 130 * time.Minute}} {
		var in []flow.Conn
		for _, c := range conns {
			if !c.End.Before(t0.Add(w[0])) && c.End.Before(t0.Add(w[1])) {
				in = append(in, c)
			}
		}
		r := store.Range{From: t0.Add(w[0]), To: t0.Add(w[1])}
		edges, err = s.Edges(t.Context(), store.EdgeQuery{Range: r})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(truth(in), edgesMap(edges)); diff != "" {
			t.Errorf("edges over %v (%s) differ (-want +got):\n%s", w, s.edgeSource(r), diff)
		}
	}
	m := t0.Unix() / 60
	want := fmt.Sprintf("(SELECT * FROM edges_minute WHERE t >= %d AND t < %d UNION ALL SELECT * FROM edges_10m WHERE t >= %d AND t < %d"+
		" UNION ALL SELECT * FROM edges_hour WHERE t >= %d AND t < %d UNION ALL SELECT * FROM edges_10m WHERE t >= %d AND t < %d"+
		" UNION ALL SELECT * FROM edges_minute WHERE t >= %d AND t < %d)", m+7, m+10, m+10, m+60, m+60, m+120, m+120, m+140, m+140, m+143)
	if got := s.edgeSource(store.Range{From: t0.Add(7 * time.Minute), To: t0.Add(143 * time.Minute)}); got != want {
		t.Errorf("plan\n%s\nwant\n%s", got, want)
	}
}

// TestSixHourLevel: a day of flows rolls up to six-hour rows (from hour rows), and ranges
// that cross them read each stretch once, matching the truth.
func TestSixHourLevel(t *testing.T) {
	s, conns := history(t, 21*time.Hour, 21000, time.Hour)
	six := s.levels[len(s.levels)-1]
	// The level exists from the first open (06:00, the block holding t0) on.
	if six.table != "edges_6h" || six.since.Load() != t0.Truncate(6*time.Hour).Unix()/60 || six.rolled.Load() != t0.Add(20*time.Hour).Unix()/60 {
		t.Fatalf("%s: since %d, rolled %d", six.table, six.since.Load(), six.rolled.Load())
	}
	for _, w := range [][2]time.Duration{{17 * time.Minute, 20*time.Hour + 37*time.Minute}, {2 * time.Hour, 20 * time.Hour}, {7*time.Hour + 55*time.Minute, 14*time.Hour + 1*time.Minute}} {
		var in []flow.Conn
		for _, c := range conns {
			if !c.End.Before(t0.Add(w[0])) && c.End.Before(t0.Add(w[1])) {
				in = append(in, c)
			}
		}
		r := store.Range{From: t0.Add(w[0]), To: t0.Add(w[1])}
		edges, err := s.Edges(t.Context(), store.EdgeQuery{Range: r})
		if err != nil {
			t.Fatal(err)
		}
		plan := s.edgeSource(r)
		if !strings.Contains(plan, "edges_6h") {
			t.Errorf("range %v does not read six-hour rows: %s", w, plan)
		}
		if diff := cmp.Diff(truth(in), edgesMap(edges)); diff != "" {
			t.Errorf("edges over %v (%s) differ (-want +got):\n%s", w, plan, diff)
		}
	}
}

func TestQueriesFilterOrderAndRTT(t *testing.T) {
	clk := &clock{t: t0}
	s := open(t, t.TempDir(), clk)
	t.Cleanup(func() { s.Close() })
	conns := flowgen.New(flowgen.Small).Conns(t0, 10*time.Minute, 5000)
	load(t, s, clk, conns)
	r := store.Range{From: t0, To: t0.Add(10 * time.Minute)}
	top, err := s.Edges(t.Context(), store.EdgeQuery{Range: r, Order: store.ByFailures, Limit: 3, WithRTT: true, Namespaces: []string{"ns1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 3 {
		t.Fatalf("got %d edges, want 3", len(top))
	}
	for i, e := range top {
		if i > 0 && e.Failed() > top[i-1].Failed() {
			t.Errorf("not ordered by failures: %v", top)
		}
		if e.RTT == nil || (e.RTT.Count() == 0 && e.Failed() < e.Closed) {
			t.Errorf("edge %s has no RTT", e.EdgeKey)
		}
		if !hasNS(e.EdgeKey, "ns1") {
			t.Errorf("edge %s outside ns1", e.EdgeKey)
		}
	}
	flows, err := s.Flows(t.Context(), store.FlowQuery{Range: r, Edge: &top[0].EdgeKey, Limit: 5})
	if err != nil || len(flows) == 0 {
		t.Fatalf("flows behind %s: %v, %v", top[0].EdgeKey, flows, err)
	}
	for _, f := range flows {
		if f.Client.Name() != top[0].Src || f.Server.Name() != top[0].Dst || f.Server.Port != top[0].Port {
			t.Errorf("flow %+v is not behind %s", f, top[0].EdgeKey)
		}
	}
	nodes, err := s.NodeHealth(t.Context(), r)
	if err != nil || len(nodes) != 3 {
		t.Fatalf("node health: %v %v", nodes, err)
	}
	un, err := s.Unattributed(t.Context(), r)
	if err != nil || len(un) == 0 {
		t.Fatalf("unattributed: %v %v", un, err)
	}
	series, err := s.EdgeSeries(t.Context(), top[0].EdgeKey, r, time.Minute)
	if err != nil || len(series) < 5 {
		t.Fatalf("series: %v %v", series, err)
	}
}

func hasNS(k store.EdgeKey, ns string) bool {
	for _, n := range []string{k.Src, k.Dst, k.Service} {
		if len(n) > len(ns) && n[:len(ns)+1] == ns+"/" {
			return true
		}
	}
	return false
}

func TestReplayAfterCrashLosesNothing(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	s := open(t, dir, clk)
	conns := flowgen.New(flowgen.Small).Conns(t0, 5*time.Minute, 3000)
	load(t, s, clk, conns[:2000])
	// Crash: close the database without flushing the aggregates still held.
	s.wmu.Lock()
	if s.flowApp != nil {
		_ = s.flowApp.Close()
	}
	_ = s.wconn.Close()
	_ = s.db.Close()
	s.wmu.Unlock()

	s = open(t, dir, clk)
	t.Cleanup(func() { s.Close() })
	load(t, s, clk, conns[2000:])
	clk.add(time.Hour)
	if err := s.Maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	edges, err := s.Edges(t.Context(), store.EdgeQuery{Range: store.Range{From: t0, To: t0.Add(5 * time.Minute)}})
	if err != nil {
		t.Fatal(err)
	}
	want, got := truth(conns), edgesMap(edges)
	// Opened counts depend on remembering open connections across the crash; all are final here.
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after crash and replay (-want +got):\n%s", diff)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	s := open(t, dir, clk)
	if _, err := s.db.Exec(`UPDATE meta SET v = 99 WHERE k = 'schema_version'`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(t.Context(), Config{Dir: dir, Now: clk.now})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open of a newer schema: %v, want ErrNewerSchema", err)
	}
	t.Log(err)
}

func TestFullDiskStopsAcceptingAndChangesNothing(t *testing.T) {
	clk := &clock{t: t0}
	s := open(t, t.TempDir(), clk)
	t.Cleanup(func() { s.Close() })
	conns := flowgen.New(flowgen.Small).Conns(t0, time.Minute, 100)
	if err := s.Write(t.Context(), conns[:50]); err != nil {
		t.Fatal(err)
	}
	s.cfg.MinFreeBytes = 1 << 62
	err := s.Write(t.Context(), conns[50:])
	if !errors.Is(err, store.ErrFull) {
		t.Fatalf("write on a full disk: %v, want ErrFull", err)
	}
	t.Log(err)
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM flows`).Scan(&n); err != nil || n != 50 {
		t.Fatalf("flows stored: %d (%v), want the 50 acknowledged", n, err)
	}
	s.cfg.MinFreeBytes = 1
	if err := s.Write(t.Context(), conns[50:]); err != nil {
		t.Fatalf("write after space came back: %v", err)
	}
}

// TestRealFullDisk fills a small tmpfs: DuckDB's own write error stops ingestion, and every
// acknowledged flow is still there after reopening.
func TestRealFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := mountTmpfs(dir, "24m"); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unmount(dir) })
	clk := &clock{t: t0}
	data := filepath.Join(dir, "data")
	s, err := Open(t.Context(), Config{Dir: data, Now: clk.now, MinFreeBytes: 1, MemoryLimit: "256MB"})
	if err != nil {
		t.Fatal(err)
	}
	gen := flowgen.New(flowgen.Small)
	acked := 0
	var werr error
	for i := 0; i < 400 && werr == nil; i++ {
		b := gen.Conns(t0.Add(time.Duration(i)*time.Second), time.Second, 5000)
		if werr = s.Write(context.Background(), b); werr == nil {
			acked += len(b)
		}
	}
	if !errors.Is(werr, store.ErrFull) {
		t.Fatalf("filling the disk ended with %v after %d flows, want ErrFull", werr, acked)
	}
	t.Logf("stopped after %d flows: %v", acked, werr)
	if err := s.Write(context.Background(), gen.Conns(t0, time.Second, 10)); !errors.Is(err, store.ErrFull) {
		t.Fatalf("write after stop: %v", err)
	}
	_ = s.Close()
	unmountErr := remountBigger(dir)
	if unmountErr != nil {
		t.Skipf("cannot grow tmpfs: %v", unmountErr)
	}
	s, err = Open(t.Context(), Config{Dir: data, Now: clk.now, MinFreeBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM flows`).Scan(&n); err != nil || n < acked {
		t.Fatalf("after reopening: %d flows (%v), %d were acknowledged", n, err, acked)
	}
}

func TestRawFlowBytesOnDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 400k flows")
	}
	dir := t.TempDir()
	clk := &clock{t: t0}
	s := open(t, dir, clk)
	gen := flowgen.New(flowgen.Config{Seed: 7, Namespaces: 20, WorkloadsPerNS: 25, PodsPerWorkload: 3, Nodes: 20, EdgesPerWorkload: 3})
	const n = 400_000
	for i := 0; i < n; i += 20000 {
		if err := s.Write(t.Context(), gen.Conns(t0.Add(time.Duration(i)*time.Millisecond*86), 20000*86*time.Millisecond, 20000)); err != nil {
			t.Fatal(err)
		}
	}
	per, err := s.RawBytesPerFlow(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	t.Logf("raw flows: %.1f bytes each on disk", per)
	if per > 24 {
		t.Errorf("raw flows take %.1f bytes each, want ≤ 24", per)
	}
}

func sortedKeys(m map[store.EdgeKey]store.Counters) []string {
	var out []string
	for k := range m {
		out = append(out, k.String())
	}
	sort.Strings(out)
	return out
}

// TestMigratesVersion1 opens a data directory of schema version 1 holding a flow and checks
// that the migration keeps it intact.
func TestMigratesVersion1(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	s := open(t, dir, clk)
	// Back to an empty database: drop every table the current schema has.
	var drop string
	err := s.db.QueryRow(`SELECT string_agg('DROP TABLE ' || table_name, '; ') FROM information_schema.tables WHERE table_schema = 'main'`).Scan(&drop)
	if err == nil {
		_, err = s.db.Exec(drop)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(migrations[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`INSERT INTO meta VALUES ('schema_version', 1);
		INSERT INTO flows VALUES (1, 1772445600000, 1500, 1, 2, NULL, 40000, 8080, NULL, NULL, 10, 20, 0, 0, 300, 450, 0, 1, 4);
		INSERT INTO edges_minute VALUES (29540760, 1, 2, 0, 8080, 1, 3, 10, 20, 3, 3, 1, 0, 0, 2, 30, NULL);
		INSERT INTO edges_minute VALUES (29540761, 1, 2, 0, 8080, 1, 4, 10, 20, 4, 4, 0, 0, 0, 0, 30, NULL);
		INSERT INTO edges_hour VALUES (29540700, 2, 1, 0, 443, 3, 7, 10, 20, 7, 7, 1, 0, 0, 2, 30, NULL);`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, clk)
	defer s.Close()
	var v int
	if err := s.db.QueryRow(`SELECT v FROM meta WHERE k = 'schema_version'`).Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("schema version %d (%v), want %d", v, err, SchemaVersion)
	}
	var got []flow.Conn
	if err := s.scanFlows(t.Context(), ``, nil, func(_ uint64, c flow.Conn) { got = append(got, c) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ClientSrttUs != 300 || got[0].ServerSrttUs != 450 || got[0].Server.Port != 8080 || got[0].Observed != "both" {
		t.Fatalf("migrated flow: %+v", got)
	}
	rows, err := s.readEdgeRows(t.Context(), "edges_minute", 0, 1<<31-1)
	if err != nil || len(rows) != 2 || rows[0].Key.Port != 8080 || rows[0].Flows+rows[1].Flows != 7 {
		t.Fatalf("migrated minute edges: %+v %v", rows, err)
	}
	hours, err := s.readEdgeRows(t.Context(), "edges_hour", 0, 1<<31-1)
	if err != nil || len(hours) != 1 || hours[0].Key.Port != 443 || hours[0].Key.Direction != store.Egress || hours[0].Flows != 7 {
		t.Fatalf("migrated hour edges: %+v %v", hours, err)
	}
}

// TestConcurrentWritesQueriesAndMaintenance runs writers, readers and maintenance together
// (run with -race); the totals must still match.
func TestConcurrentWritesQueriesAndMaintenance(t *testing.T) {
	clk := &clock{t: t0.Add(time.Hour)}
	s := open(t, t.TempDir(), clk)
	defer s.Close()
	gen := flowgen.New(flowgen.Small)
	var batches [][]flow.Conn
	for i := range 8 {
		batches = append(batches, gen.Conns(t0.Add(time.Duration(i)*time.Minute), time.Minute, 500))
	}
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(batches); i += 2 {
				errs <- s.Write(t.Context(), batches[i])
			}
		}()
	}
	r := store.Range{From: t0, To: t0.Add(10 * time.Minute)}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 5 {
			_, err := s.Edges(t.Context(), store.EdgeQuery{Range: r, WithRTT: true, Limit: 5})
			errs <- err
			_, err = s.Flows(t.Context(), store.FlowQuery{Range: r, Limit: 5})
			errs <- err
		}
	}()
	go func() {
		defer wg.Done()
		for range 5 {
			errs <- s.Maintain(t.Context())
		}
	}()
	go func() { wg.Wait(); close(errs) }()
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	clk.add(time.Hour)
	if err := s.Maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	var all []flow.Conn
	for _, b := range batches {
		all = append(all, b...)
	}
	edges, err := s.Edges(t.Context(), store.EdgeQuery{Range: r})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(truth(all), edgesMap(edges)); diff != "" {
		t.Errorf("after concurrent use (-want +got):\n%s", diff)
	}
}

// TestDictionaryIsPrunedWithRawRetention: endpoints whose flows passed retention leave the
// dictionary (memory stays bounded under pod churn); a pod seen again gets a fresh id.
func TestDictionaryIsPrunedWithRawRetention(t *testing.T) {
	clk := &clock{t: t0}
	s, err := Open(t.Context(), Config{Dir: t.TempDir(), Now: clk.now, MinFreeBytes: 1, Retention: store.Retention{Raw: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := flowgen.New(flowgen.Config{Seed: 1, Namespaces: 2, WorkloadsPerNS: 3, PodsPerWorkload: 2, Nodes: 2, EdgesPerWorkload: 2})
	if err := s.Write(t.Context(), old.Conns(t0, time.Minute, 500)); err != nil {
		t.Fatal(err)
	}
	before := s.dict.size()
	clk.add(3 * time.Hour)
	fresh := flowgen.New(flowgen.Config{Seed: 2, Namespaces: 1, WorkloadsPerNS: 2, PodsPerWorkload: 1, Nodes: 1, EdgesPerWorkload: 1})
	conns := fresh.Conns(clk.now(), time.Minute, 100)
	for i := range conns {
		conns[i].Client.Namespace, conns[i].Server.Namespace = "new", "new"
	}
	if err := s.Write(t.Context(), conns); err != nil {
		t.Fatal(err)
	}
	if err := s.Maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	after := s.dict.size()
	var stored int
	if err := s.db.QueryRow(`SELECT count(*) FROM endpoints`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if after >= before || stored != after {
		t.Fatalf("dictionary %d endpoints before, %d after retention (%d stored)", before, after, stored)
	}
	// The old cluster comes back: new ids, and its flows read back intact.
	back := old.Conns(clk.now(), time.Minute, 50)
	if err := s.Write(t.Context(), back); err != nil {
		t.Fatal(err)
	}
	got, err := s.Flows(t.Context(), store.FlowQuery{Range: store.Range{From: clk.now().Add(-time.Minute), To: clk.now().Add(2 * time.Minute)}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range got {
		names[c.Client.Name()] = true
		if c.Client.Kind == "" || c.Server.Kind == "" {
			t.Fatalf("flow with an unknown endpoint: %+v", c)
		}
	}
	if len(got) != 150 || !names["ns0/app0"] {
		t.Fatalf("%d flows read back, clients %v", len(got), names)
	}
}
