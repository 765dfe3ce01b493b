package duckdb

import (
	"context"
	"database/sql/driver"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/collector/aggregate"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/store"
)

// flush writes the aggregator's closed minutes (every minute when all is set) to edges_minute,
// and to edges_hour for hours already rolled up, then advances the replay watermark, in one
// transaction. Rows that fail to write are kept and retried.
func (s *Store) flush(ctx context.Context, all bool) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	rows, wm := s.agg.Flush(s.now(), all)
	s.pending = append(s.pending, rows...)
	if wm < s.pendWM {
		wm = s.pendWM
	}
	if len(s.pending) == 0 && wm == s.pendWM {
		return nil
	}
	var p pendingDict
	err := s.inTx(func(dc driver.Conn) error {
		if err := s.appendEdges(dc, "edges_minute", s.pending, &p); err != nil {
			return err
		}
		for _, l := range s.levels {
			// Late minutes of blocks already rolled up go into those levels too.
			var late []store.EdgeRow
			for _, r := range s.pending {
				if r.Time.Unix()/60 < l.rolled.Load() {
					late = append(late, r)
				}
			}
			if err := s.appendEdges(dc, l.table, aggregate.Rollup(late, l.step()), &p); err != nil {
				return err
			}
		}
		_, err := execDriver(dc, `INSERT OR REPLACE INTO meta VALUES ('minute_seq', ?)`, int64(wm))
		return err
	})
	if err != nil {
		return fmt.Errorf("writing minute edges: %w", err)
	}
	s.m.edgeRows.Add(float64(len(s.pending)))
	s.pending, s.pendWM = s.pending[:0], wm
	return nil
}

// inTx runs f in a transaction on the write connection (wmu held). Dictionary entries that
// edges need are stored first, in their own transaction.
func (s *Store) inTx(f func(driver.Conn) error) error {
	return s.withDriverConn(func(dc driver.Conn) error {
		if _, err := execDriver(dc, `BEGIN TRANSACTION`); err != nil {
			return err
		}
		if err := f(dc); err != nil {
			_, _ = execDriver(dc, `ROLLBACK`)
			s.edges.rollback()
			return err
		}
		if _, err := execDriver(dc, `COMMIT`); err != nil {
			s.edges.rollback()
			return err
		}
		s.edges.commit()
		return nil
	})
}

func (s *Store) appendEdges(dc driver.Conn, table string, rows []store.EdgeRow, p *pendingDict) error {
	if len(rows) == 0 {
		return nil
	}
	keys := make([]edgeIDs, len(rows))
	for i, r := range rows {
		var err error
		if keys[i], err = s.idsOf(r.Key, p); err != nil {
			return err
		}
	}
	ctx := context.Background()
	if len(p.nodes) > 0 {
		// Nodes first seen as edge ends (normally they came with their endpoints).
		nrows := make([][]driver.Value, len(p.nodes))
		for i, n := range p.nodes {
			nrows[i] = []driver.Value{n.id, n.n.ID, n.doc}
		}
		if err := appendAll(ctx, dc, "nodes", nrows); err != nil {
			return fmt.Errorf("storing nodes: %w", err)
		}
		s.dict.publish(p)
		*p = pendingDict{}
	}
	ids, err := s.edges.resolve(ctx, dc, keys)
	if err != nil {
		return err
	}
	out := make([][]driver.Value, len(rows))
	for i, r := range rows {
		c := &r.Counters
		out[i] = []driver.Value{int32(r.Time.Unix() / 60), ids[i],
			i64(c.Flows), i64(c.BytesClientToServer), i64(c.BytesServerToClient), i64(c.Opened), i64(c.Closed),
			i64(c.Refused), i64(c.Timeout), i64(c.Reset), i64(c.Retransmits), i64(c.PeakBytesPerMinute), r.RTT.AppendBinary(nil)}
	}
	if err := appendAll(ctx, dc, table, out); err != nil {
		return fmt.Errorf("writing %s: %w", table, err)
	}
	return nil
}

// i64 converts a counter for a BIGINT column (counters never reach 2^63).
func i64(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

func execDriver(dc driver.Conn, q string, args ...any) (driver.Result, error) {
	ex := dc.(driver.ExecerContext)
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return ex.ExecContext(context.Background(), q, named)
}

// rollup merges the minute edges of every completed block into each coarser level.
func (s *Store) rollup(ctx context.Context) error {
	grace := 2*s.agg.Grace() + 2*s.cfg.FlushEvery
	for i, l := range s.levels {
		var finer *level
		if i > 0 {
			finer = s.levels[i-1]
		}
		for {
			rolled := l.rolled.Load()
			next := rolled + l.minutes
			if time.Unix(next*60, 0).Add(grace).After(s.now()) || (finer != nil && finer.rolled.Load() < next) {
				break
			}
			// The finer level's rows are fewer to read than minutes, where it has the block.
			src := "edges_minute"
			if finer != nil && rolled >= finer.since.Load() {
				src = finer.table
			}
			if err := s.rollupBlock(ctx, l, src, rolled, next); err != nil {
				return fmt.Errorf("rolling up %s at %s: %w", l.table, time.Unix(rolled*60, 0).UTC(), err)
			}
		}
	}
	return nil
}

func (s *Store) rollupBlock(ctx context.Context, l *level, src string, from, to int64) error {
	rows, err := s.readEdgeRows(ctx, src, from, to)
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err = s.inTx(func(dc driver.Conn) error {
		if err := s.appendEdges(dc, l.table, aggregate.Rollup(rows, l.step()), &pendingDict{}); err != nil {
			return err
		}
		_, err := execDriver(dc, `INSERT OR REPLACE INTO meta VALUES (?, ?)`, l.meta, to)
		return err
	})
	if err == nil {
		l.rolled.Store(to)
	}
	return err
}

// readEdgeRows reads rows of table with t in [from, to) (unix minutes).
func (s *Store) readEdgeRows(ctx context.Context, table string, from, to int64) ([]store.EdgeRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t, edge, flows, bcs, bsc, opened, closed,
		refused, timeout, reset, retrans, peak, rtt FROM `+table+` WHERE t >= ? AND t < ?`, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.EdgeRow
	for rows.Next() {
		var r store.EdgeRow
		var t int64
		var edge uint32
		var rtt []byte
		if err := rows.Scan(append(append([]any{&t, &edge}, counterDest(&r.Counters)...), &rtt)...); err != nil {
			return nil, err
		}
		r.Time = time.Unix(t*60, 0).UTC()
		r.Key = s.keyOf(edge)
		if err := r.RTT.UnmarshalBinary(rtt); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// trim deletes what is past retention.
func (s *Store) trim(ctx context.Context, now time.Time) error {
	r := s.cfg.Retention
	stmts := []struct {
		q   string
		arg int64
	}{
		{`DELETE FROM flows WHERE end_ms < ?`, now.Add(-r.Raw).UnixMilli()},
		{`DELETE FROM edges_minute WHERE t < ?`, now.Add(-r.Minute).Unix() / 60},
		{`DELETE FROM edges_10m WHERE t < ?`, now.Add(-r.Minute).Unix() / 60},
		{`DELETE FROM edges_hour WHERE t < ?`, now.Add(-r.Hour).Unix() / 60},
		{`DELETE FROM edges_6h WHERE t < ?`, now.Add(-r.Hour).Unix() / 60},
	}
	s.wmu.Lock()
	for _, st := range stmts {
		if _, err := s.wconn.ExecContext(ctx, st.q, st.arg); err != nil {
			s.wmu.Unlock()
			return fmt.Errorf("applying retention: %w", err)
		}
	}
	s.wmu.Unlock()
	return s.pruneEndpoints(ctx)
}

// pruneEndpoints deletes the endpoints no raw flow refers to any more (their flows passed
// retention), so that the dictionary is bounded by the pods of one raw retention period. The
// scan runs without blocking writes; flows written meanwhile are checked under the lock.
func (s *Store) pruneEndpoints(ctx context.Context) error {
	s.wmu.Lock()
	seq := s.nextSeq
	s.wmu.Unlock()
	candidates, err := s.queryIDs(ctx, `SELECT id FROM endpoints WHERE id NOT IN
		(SELECT client FROM flows UNION SELECT server FROM flows UNION SELECT vip FROM flows WHERE vip IS NOT NULL)`)
	if err != nil || len(candidates) == 0 {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	recent, err := s.queryIDs(ctx, fmt.Sprintf(`SELECT client FROM flows WHERE seq >= %[1]d UNION SELECT server FROM flows WHERE seq >= %[1]d
		UNION SELECT vip FROM flows WHERE seq >= %[1]d AND vip IS NOT NULL`, seq))
	if err != nil {
		return err
	}
	used := make(map[uint32]bool, len(recent))
	for _, id := range recent {
		used[id] = true
	}
	gone := candidates[:0]
	for _, id := range candidates {
		if !used[id] {
			gone = append(gone, id)
		}
	}
	for i := 0; i < len(gone); i += 10000 {
		chunk := gone[i:min(i+10000, len(gone))]
		if _, err := s.wconn.ExecContext(ctx, `DELETE FROM endpoints WHERE id IN (`+idList(chunk)+`)`); err != nil {
			return fmt.Errorf("pruning endpoints: %w", err)
		}
		s.dict.forget(chunk)
	}
	s.m.pruned.Add(float64(len(gone)))
	return nil
}

func (s *Store) queryIDs(ctx context.Context, q string) ([]uint32, error) {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("finding unused endpoints: %w", err)
	}
	defer rows.Close()
	var out []uint32
	for rows.Next() {
		var id uint32
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("finding unused endpoints: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// replay aggregates raw flows stored after the last flushed watermark (the process stopped
// before their minutes were written).
func (s *Store) replay(ctx context.Context) error {
	n := 0
	err := s.scanFlows(ctx, `WHERE seq > ? ORDER BY seq`, []any{s.pendWM}, func(seq uint64, c flow.Conn) {
		s.agg.Add(c, seq)
		n++
	})
	if err != nil {
		return fmt.Errorf("replaying flows not yet aggregated: %w", err)
	}
	if n > 0 {
		s.log.Info("replayed flows not yet aggregated", "flows", n)
	}
	return nil
}

type metrics struct {
	written, rejected, edgeRows, pruned prometheus.Counter
	stopped, freeBytes                  prometheus.Gauge
}

func newMetrics(reg *prometheus.Registry, s *Store) *metrics {
	m := &metrics{
		written:   prometheus.NewCounter(prometheus.CounterOpts{Name: "flowscope_store_flows_written_total", Help: "Raw flows stored."}),
		rejected:  prometheus.NewCounter(prometheus.CounterOpts{Name: "flowscope_store_flows_rejected_total", Help: "Flows refused (disk full, write error); not acknowledged."}),
		edgeRows:  prometheus.NewCounter(prometheus.CounterOpts{Name: "flowscope_store_edge_rows_written_total", Help: "Minute edge rows written."}),
		pruned:    prometheus.NewCounter(prometheus.CounterOpts{Name: "flowscope_store_endpoints_pruned_total", Help: "Endpoints removed from the dictionary once no raw flow referred to them."}),
		stopped:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "flowscope_store_ingestion_stopped", Help: "1 when ingestion stopped for good (database failed or disk full)."}),
		freeBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flowscope_store_disk_free_bytes", Help: "Free bytes on the data directory's file system at the last write."}),
	}
	if reg != nil {
		reg.MustRegister(m.written, m.rejected, m.edgeRows, m.pruned, m.stopped, m.freeBytes,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowscope_store_dictionary_endpoints", Help: "Endpoints in the dictionary (bounded by the raw retention)."},
				func() float64 { return float64(s.dict.size()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowscope_store_aggregate_keys", Help: "Edge keys held in open minutes."},
				func() float64 { return float64(s.agg.Stats().Keys) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "flowscope_store_aggregate_dropped_total", Help: "Records not aggregated because the key limit was reached (still stored raw)."},
				func() float64 { return float64(s.agg.Stats().DroppedKeys) }))
	}
	return m
}

// ImportEdges writes edge rows directly at a level ("minute", "10m", "hour" or "6h"), bypassing raw flows:
// for backfills and for the benchmark's synthetic history. Node ids in the keys are created as
// plain nodes when unknown.
func (s *Store) ImportEdges(ctx context.Context, level string, rows []store.EdgeRow) error {
	table := map[string]string{"minute": "edges_minute", "10m": "edges_10m", "hour": "edges_hour", "6h": "edges_6h"}[level]
	if table == "" {
		return fmt.Errorf("unknown edge level %q", level)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var p pendingDict
	for _, r := range rows {
		for _, name := range []string{r.Key.Src, r.Key.Dst, r.Key.Service} {
			if _, err := s.dict.nodeByName(name, &p); err != nil {
				return err
			}
		}
	}
	if err := s.storeDict(ctx, &p); err != nil {
		return fmt.Errorf("importing edges: %w", err)
	}
	s.dict.publish(&p)
	return s.inTx(func(dc driver.Conn) error { return s.appendEdges(dc, table, rows, &pendingDict{}) })
}

// SetRolledUntil marks the rows of every level before t as complete (the benchmark imports
// them itself).
func (s *Store) SetRolledUntil(ctx context.Context, t time.Time) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, l := range s.levels {
		m := t.Unix() / 60 / l.minutes * l.minutes
		if _, err := s.wconn.ExecContext(ctx, `INSERT OR REPLACE INTO meta VALUES (?, ?), (?, 0)`, l.meta, m, l.meta+"_since"); err != nil {
			return fmt.Errorf("setting rollup state: %w", err)
		}
		l.rolled.Store(m)
		l.since.Store(0)
	}
	return nil
}
