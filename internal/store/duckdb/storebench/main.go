// Command storebench measures the embedded DuckDB store against the 1-billion-flows-a-day
// target: CPU per ingested flow, raw bytes per flow on disk, and the latency of deps, top and
// health over 24 hours of 10,000 workloads' edges. Results go to stdout as Markdown; see
// docs/benchmarks/store.md.
//
//	go run ./internal/store/duckdb/storebench [-flows 3000000] [-workloads 10000]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowscope/flowscope/internal/api"
	"github.com/flowscope/flowscope/internal/collector/aggregate"
	"github.com/flowscope/flowscope/internal/depgraph"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowgen"
	"github.com/flowscope/flowscope/internal/health"
	"github.com/flowscope/flowscope/internal/store"
	"github.com/flowscope/flowscope/internal/store/duckdb"
)

func main() {
	flows := flag.Int("flows", 3_000_000, "raw flows to ingest")
	batch := flag.Int("batch", 2000, "flows per Write call")
	workloads := flag.Int("workloads", 10000, "workloads of the 24-hour edge history")
	edgesPer := flag.Int("edges-per-workload", 3, "outgoing edges per workload")
	minuteHours := flag.Int("minute-hours", 24, "hours of the history also kept as minute rows")
	dir := flag.String("dir", "", "data directory (default: a temporary one, removed after)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the ingestion here")
	qprofile := flag.String("queryprofile", "", "write a CPU profile of the queries here")
	flag.BoolVar(&explain, "explain", false, "print DuckDB's EXPLAIN ANALYZE of the deps query (24 h, not aligned) and stop")
	flag.Parse()
	profile, queryProfile = *cpuprofile, *qprofile
	if err := run(*flows, *batch, *workloads, *edgesPer, *minuteHours, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "storebench:", err)
		os.Exit(1)
	}
}

var (
	profile, queryProfile string
	explain               bool
)

// startProfile starts a CPU profile into path (nothing when empty); stop ends it.
func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func run(nflows, batch, workloads, edgesPer, minuteHours int, dir string) error {
	ctx := context.Background()
	if dir == "" {
		d, err := os.MkdirTemp("", "storebench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	var load [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &load[0], &load[1], &load[2])
	}
	fmt.Printf("# store benchmark, %s, %d cores, %s, load average %.1f at start\n\n", time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.Version(), load[0])
	if nflows > 0 {
		if err := ingest(ctx, dir+"/ingest", nflows, batch); err != nil {
			return err
		}
	}
	return queries(ctx, dir+"/history", workloads, edgesPer, minuteHours)
}

// ingest writes nflows through Write and Maintain as the collector does, replaying a
// pre-generated pool with shifted times so generation costs nothing, and measures the CPU.
func ingest(ctx context.Context, dir string, nflows, batch int) error {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	now := start
	st, err := duckdb.Open(ctx, duckdb.Config{Dir: dir, Now: func() time.Time { return now }})
	if err != nil {
		return err
	}
	defer st.Close()
	gen := flowgen.New(flowgen.Config{Seed: 1, Namespaces: 50, WorkloadsPerNS: 40, PodsPerWorkload: 3, Nodes: 50, EdgesPerWorkload: 3})
	const rate = 11_600.0 // flows per second of simulated time: 1 billion a day
	poolN := 200_000
	poolSpan := time.Duration(float64(poolN) / rate * float64(time.Second))
	pool := gen.Conns(start, poolSpan, poolN)
	span := pool[len(pool)-1].End.Sub(pool[0].End) + time.Second
	buf := make([]flow.Conn, batch)
	var busy time.Duration
	stop, err := startProfile(profile)
	if err != nil {
		return err
	}
	defer stop()
	cpu0, wall0 := cpuTime(), time.Now()
	for done := 0; done < nflows; done += batch {
		n := min(batch, nflows-done)
		shift := time.Duration(done/len(pool)) * span
		for i := range n {
			c := pool[(done+i)%len(pool)]
			c.Start, c.End = c.Start.Add(shift), c.End.Add(shift)
			buf[i] = c
		}
		now = buf[n-1].End
		t := time.Now()
		if err := st.Write(ctx, buf[:n]); err != nil {
			return err
		}
		if (done/batch)%50 == 0 {
			if err := st.Maintain(ctx); err != nil {
				return err
			}
		}
		busy += time.Since(t)
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	simulated := float64(nflows) / rate
	perFlow := cpu / time.Duration(nflows)
	bytes, err := st.RawBytesPerFlow(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("## Ingestion: %d flows in batches of %d (= %.0f s of a 1-billion-a-day stream)\n\n", nflows, batch, simulated)
	fmt.Println("| measure | value | target |")
	fmt.Println("|---|---|---|")
	fmt.Printf("| CPU per flow (Write + aggregation + maintenance, all threads) | %.2f µs | |\n", float64(perFlow.Nanoseconds())/1000)
	fmt.Printf("| share of one core at 11,600 flows/s | %.1f %% | ≤ 25 %% |\n", 100*perFlow.Seconds()*rate)
	fmt.Printf("| sustained throughput (wall clock) | %.0f flows/s | bursts of 100,000/s |\n", float64(nflows)/wall.Seconds())
	fmt.Printf("| raw flow on disk, compressed | %.1f bytes | ≤ 24 bytes |\n\n", bytes)
	_ = busy
	return nil
}

// queries builds a 24-hour edge history of workloads × edgesPer edges (hour rows for every
// hour, minute rows for the last minuteHours) and times the answers.
func queries(ctx context.Context, dir string, workloads, edgesPer, minuteHours int) error {
	end := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
	st, err := duckdb.Open(ctx, duckdb.Config{Dir: dir, Now: func() time.Time { return end }})
	if err != nil {
		return err
	}
	defer st.Close()
	keys := edgeKeys(workloads, edgesPer)
	t0 := time.Now()
	cov, err := st.Coverage(ctx)
	if err != nil {
		return err
	}
	if !cov.HourFrom.IsZero() {
		fmt.Printf("(reusing the history already in %s)\n\n", dir)
		return timeQueries(ctx, st, end, workloads, keys, minuteHours, 0)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var rows []store.EdgeRow
	flush := func(level string) error {
		err := st.ImportEdges(ctx, level, rows)
		rows = rows[:0]
		return err
	}
	var block []store.EdgeRow // the hour rows of the current six hours
	for h := range 24 {
		ht := end.Add(time.Duration(h-24) * time.Hour)
		for _, k := range keys {
			rows = append(rows, row(rng, ht, k, 60))
		}
		block = append(block, rows...)
		if err := flush("hour"); err != nil {
			return err
		}
		if h%6 == 5 {
			rows = aggregate.Rollup(block, 6*time.Hour)
			block = block[:0]
			if err := flush("6h"); err != nil {
				return err
			}
		}
		if h < 24-minuteHours {
			continue
		}
		for m := range 60 {
			for _, k := range keys {
				rows = append(rows, row(rng, ht.Add(time.Duration(m)*time.Minute), k, 1))
			}
			if err := flush("minute"); err != nil {
				return err
			}
			if m%10 != 0 {
				continue
			}
			for _, k := range keys {
				rows = append(rows, row(rng, ht.Add(time.Duration(m)*time.Minute), k, 10))
			}
			if err := flush("10m"); err != nil {
				return err
			}
		}
	}
	if err := st.SetRolledUntil(ctx, end); err != nil {
		return err
	}
	return timeQueries(ctx, st, end, workloads, keys, minuteHours, time.Since(t0))
}

func timeQueries(ctx context.Context, st *duckdb.Store, end time.Time, workloads int, keys []store.EdgeKey, minuteHours int, load time.Duration) error {
	fmt.Printf("## Queries over 24 h of %d workloads, %d edge keys (edges, node totals, zone paths: %d six-hour rows, %d hour rows, %d ten-minute rows, %d minute rows; built in %s)\n\n",
		workloads, len(keys), 4*len(keys), 24*len(keys), minuteHours*6*len(keys), minuteHours*60*len(keys), load.Round(time.Second))
	odd := store.Range{From: end.Add(-24*time.Hour + 17*time.Minute), To: end.Add(-23 * time.Minute)}
	if explain {
		plan, err := st.ExplainEdges(ctx, store.EdgeQuery{Range: odd})
		fmt.Println(plan)
		return err
	}
	srv := httptest.NewServer(api.New(api.Config{Store: st, Now: func() time.Time { return end }}))
	defer srv.Close()
	fmt.Println("| answer | range | store query: wall / CPU | HTTP API (JSON): wall / CPU | target |")
	fmt.Println("|---|---|---|---|---|")
	day := store.Range{From: end.Add(-24 * time.Hour), To: end}
	cases := []struct {
		name, path, target string
		r                  store.Range
		q                  func(store.Range) error
	}{
		{"deps", "/api/v1/deps", "< 200 ms", day, func(r store.Range) error { _, err := depgraph.Deps(ctx, st, store.EdgeQuery{Range: r}); return err }},
		{"deps", "/api/v1/deps", "< 200 ms", odd, func(r store.Range) error { _, err := depgraph.Deps(ctx, st, store.EdgeQuery{Range: r}); return err }},
		{"deps, one namespace", "/api/v1/deps?namespace=ns7", "< 200 ms", day, func(r store.Range) error {
			_, err := depgraph.Deps(ctx, st, store.EdgeQuery{Range: r, Namespaces: []string{"ns7"}})
			return err
		}},
		{"top 10 by bytes", "/api/v1/top", "< 500 ms", day, func(r store.Range) error {
			_, err := depgraph.Top(ctx, st, store.EdgeQuery{Range: r, Limit: 10}, depgraph.ByEdge)
			return err
		}},
		{"top 10 workloads by failures", "/api/v1/top?by=failures&group=workload", "< 500 ms", day, func(r store.Range) error {
			_, err := depgraph.Top(ctx, st, store.EdgeQuery{Range: r, Limit: 10, Order: store.ByFailures}, depgraph.ByWorkload)
			return err
		}},
		{"health (20 worst edges with RTT, nodes)", "/api/v1/health", "< 500 ms", day, func(r store.Range) error {
			_, err := health.Build(ctx, st, store.EdgeQuery{Range: r})
			return err
		}},
		{"health", "/api/v1/health", "< 500 ms", odd, func(r store.Range) error {
			_, err := health.Build(ctx, st, store.EdgeQuery{Range: r})
			return err
		}},
	}
	stop, err := startProfile(queryProfile)
	if err != nil {
		return err
	}
	defer stop()
	for _, c := range cases {
		qd, qc, err := median(func() error { return c.q(c.r) })
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		sep := "?"
		if len(c.path) > 0 && contains(c.path, '?') {
			sep = "&"
		}
		url := fmt.Sprintf("%s%s%sfrom=%d&to=%d", srv.URL, c.path, sep, c.r.From.Unix(), c.r.To.Unix())
		hd, hc, err := median(func() error { return get(url) })
		if err != nil {
			return fmt.Errorf("%s over HTTP: %w", c.name, err)
		}
		rng := "24 h, hour-aligned"
		if c.r != day {
			rng = "24 h, not aligned"
		}
		fmt.Printf("| %s | %s | %d / %d ms | %d / %d ms | %s |\n", c.name, rng, qd.Milliseconds(), qc.Milliseconds(), hd.Milliseconds(), hc.Milliseconds(), c.target)
	}
	fmt.Println()
	return nil
}

func contains(s string, c byte) bool {
	for i := range len(s) {
		if s[i] == c {
			return true
		}
	}
	return false
}

func get(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("%s: %s", resp.Status, e.Error)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// median runs f five times (after one warm-up) and returns the median wall time and the
// median CPU time of the whole process (all threads: Go and DuckDB) per run. The CPU time does
// not grow when other processes compete for the cores; the wall time does.
func median(f func() error) (wall, cpu time.Duration, err error) {
	if err := f(); err != nil {
		return 0, 0, err
	}
	var ws, cs []time.Duration
	for range 5 {
		t, c := time.Now(), cpuTime()
		if err := f(); err != nil {
			return 0, 0, err
		}
		ws, cs = append(ws, time.Since(t)), append(cs, cpuTime()-c)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i] < ws[j] })
	sort.Slice(cs, func(i, j int) bool { return cs[i] < cs[j] })
	return ws[2], cs[2], nil
}

func edgeKeys(workloads, edgesPer int) []store.EdgeKey {
	rng := rand.New(rand.NewPCG(3, 4))
	perNS := 100
	name := func(i int) string { return fmt.Sprintf("ns%d/wl%d", i/perNS, i%perNS) }
	var keys []store.EdgeKey
	seen := map[store.EdgeKey]bool{}
	for i := range workloads {
		for range edgesPer {
			j := rng.IntN(workloads)
			k := store.EdgeKey{Src: name(i), Dst: name(j), Port: uint16(8000 + j%8), Direction: store.Internal}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	// What health reads besides edges: per-node totals (one node per 100 workloads) and the
	// paths between three zones and the outside.
	for n := range max(workloads/100, 1) {
		keys = append(keys, store.EdgeKey{Src: fmt.Sprintf("node/n%d", n), Direction: store.NodeOut},
			store.EdgeKey{Dst: fmt.Sprintf("node/n%d", n), Direction: store.NodeIn})
	}
	zones := []string{"a", "b", "c", ""}
	for _, a := range zones {
		for _, b := range zones {
			if a != "" || b != "" {
				keys = append(keys, store.EdgeKey{Src: store.ZoneNode(a), Dst: store.ZoneNode(b), Direction: store.ZonePath})
			}
		}
	}
	return keys
}

func row(rng *rand.Rand, t time.Time, k store.EdgeKey, minutes uint64) store.EdgeRow {
	n := minutes * uint64(1+rng.IntN(20))
	r := store.EdgeRow{Time: t, Key: k, Counters: store.Counters{Flows: n, Opened: n, Closed: n,
		BytesClientToServer: n * uint64(500+rng.IntN(5000)), BytesServerToClient: n * uint64(2000+rng.IntN(50000)),
		Retransmits: uint64(rng.IntN(3)), Refused: uint64(rng.IntN(2))}}
	r.PeakBytesPerMinute = (r.BytesClientToServer + r.BytesServerToClient) / minutes
	base := uint32(200 + rng.IntN(2000))
	for range min(n, 8) {
		r.RTT.Add(base + uint32(rng.IntN(int(base))))
	}
	return r
}
