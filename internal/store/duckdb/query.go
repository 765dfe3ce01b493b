package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flowscope/flowscope/internal/sketch"
	"github.com/flowscope/flowscope/internal/store"
)

// edgeSource returns a SQL relation over the edge rows of r: for each stretch of r the
// coarsest rolled-up rows that fit exactly (six hours, hours, then ten-minute blocks), minute
// rows for the rest. Ranges are aligned outward to whole minutes.
func (s *Store) edgeSource(r store.Range) string { return s.edgeSourceStep(r, math.MaxInt64) }

// edgeSourceStep is edgeSource for a caller that needs rows of at most step.
func (s *Store) edgeSourceStep(r store.Range, step time.Duration) string {
	var levels []*level
	for _, l := range s.levels {
		if l.step() <= step {
			levels = append(levels, l)
		}
	}
	parts := s.cover(r.From.Unix()/60, (r.To.Unix()+59)/60, levels, nil)
	return "(" + strings.Join(parts, " UNION ALL ") + ")"
}

// cover appends the parts reading [from, to) (unix minutes) with levels (finest first).
func (s *Store) cover(from, to int64, levels []*level, parts []string) []string {
	if from >= to {
		return parts
	}
	if len(levels) == 0 {
		return append(parts, fmt.Sprintf("SELECT * FROM edges_minute WHERE t >= %d AND t < %d", from, to))
	}
	l, finer := levels[len(levels)-1], levels[:len(levels)-1]
	a := max((from+l.minutes-1)/l.minutes*l.minutes, l.since.Load())
	b := min(to/l.minutes*l.minutes, l.rolled.Load())
	if a >= b {
		return s.cover(from, to, finer, parts)
	}
	parts = s.cover(from, a, finer, parts)
	parts = append(parts, fmt.Sprintf("SELECT * FROM %s WHERE t >= %d AND t < %d", l.table, a, b))
	return s.cover(b, to, finer, parts)
}

func idList(ids []uint32) string {
	if len(ids) == 0 {
		return "NULL"
	}
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(id), 10))
	}
	return b.String()
}

const sums = `sum(flows)::UBIGINT, sum(bcs)::UBIGINT, sum(bsc)::UBIGINT, sum(opened)::UBIGINT, sum(closed)::UBIGINT,
	sum(refused)::UBIGINT, sum(timeout)::UBIGINT, sum(reset)::UBIGINT, sum(retrans)::UBIGINT, max(peak)::UBIGINT`

func counterDest(c *store.Counters) []any {
	return []any{&c.Flows, &c.BytesClientToServer, &c.BytesServerToClient, &c.Opened, &c.Closed,
		&c.Refused, &c.Timeout, &c.Reset, &c.Retransmits, &c.PeakBytesPerMinute}
}

var orderExpr = map[store.Order]string{
	store.ByBytes:       "sum(bcs) + sum(bsc)",
	store.ByConnections: "sum(opened)",
	store.ByFailures:    "sum(refused) + sum(timeout) + sum(reset)",
	store.ByRetransmits: "sum(retrans)",
}

// keyOf names an edge id.
func (s *Store) keyOf(edge uint32) store.EdgeKey {
	e := s.edges.key(edge)
	return store.EdgeKey{Src: s.dict.node(e.src).ID, Dst: s.dict.node(e.dst).ID, Service: s.dict.node(e.svc).ID,
		Port: e.port, Direction: store.Direction(e.dir)}
}

// edgeFilter is the selection of the edges q asks for, and false when no edge can match.
func (s *Store) edgeFilter(q store.EdgeQuery) (selection, bool) {
	dirs := q.Directions
	if len(dirs) == 0 {
		dirs = []store.Direction{store.Internal, store.Ingress, store.Egress}
	}
	var dirOK [8]bool
	for _, d := range dirs {
		dirOK[d&7] = true
	}
	var inNS map[uint32]bool
	if len(q.Namespaces) > 0 {
		inNS = map[uint32]bool{}
		for _, id := range s.dict.nodesIn(q.Namespaces) {
			inNS[id] = true
		}
	}
	var wl uint32
	if q.Workload != "" {
		var ok bool
		if wl, ok = s.dict.nodeIDOf(q.Workload); !ok {
			return selection{}, false
		}
	}
	sel := s.edges.filter(func(e edgeIDs) bool {
		if !dirOK[e.dir&7] {
			return false
		}
		if inNS != nil && !inNS[e.src] && !inNS[e.dst] && !inNS[e.svc] {
			return false
		}
		return wl == 0 || e.src == wl || e.dst == wl || e.svc == wl
	})
	return sel, true
}

// perfectHashBits lets DuckDB group the edge rows of a query that keeps many edges in a
// perfect hash table (an array indexed by edge id) while edge ids span at most 2^17: a third
// less CPU for deps over a day of 30,000 edges than a hash table. Each query thread then holds
// up to 2^17 aggregate states (~20 MB), which a query keeping few edges would spend more time
// setting up and scanning than grouping: those keep DuckDB's default (2^12).
const perfectHashBits, defaultHashBits = 17, 12

// edgesSQL is the query of Edges, the setting it runs under and the edge ids to drop from its
// rows (false when no edge can match).
func (s *Store) edgesSQL(q store.EdgeQuery) (string, string, map[uint32]bool, bool) {
	sel, ok := s.edgeFilter(q)
	if !ok {
		return "", "", nil, false
	}
	bits := defaultHashBits
	if sel.many {
		bits = perfectHashBits
	}
	setting := fmt.Sprintf(`SET perfect_ht_threshold = %d`, bits)
	where := ""
	if sel.where != "" {
		where = " WHERE " + sel.where
	}
	order, ok := orderExpr[q.Order]
	if !ok {
		order = orderExpr[store.ByBytes]
	}
	sqlq := `SELECT edge, ` + sums + ` FROM ` + s.edgeSource(q.Range) + where + ` GROUP BY edge`
	if q.Limit > 0 {
		// Without a limit, Edges orders the rows itself (by name on ties anyway). Rows to
		// drop may be among the first: read as many more.
		sqlq += ` ORDER BY ` + order + ` DESC, edge LIMIT ` + strconv.Itoa(q.Limit+len(sel.drop))
	}
	return sqlq, setting, sel.drop, true
}

// ExplainEdges runs the query of Edges under EXPLAIN ANALYZE and returns DuckDB's profile.
func (s *Store) ExplainEdges(ctx context.Context, q store.EdgeQuery) (string, error) {
	sqlq, setting, _, ok := s.edgesSQL(q)
	if !ok {
		return "", nil
	}
	var b strings.Builder
	err := s.eachRow(ctx, setting, "EXPLAIN ANALYZE "+sqlq, func(v []driver.Value) error {
		b.WriteString(fmt.Sprint(v[1]))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("explaining edges: %w", err)
	}
	return b.String(), nil
}

// Edges implements store.Querier.
func (s *Store) Edges(ctx context.Context, q store.EdgeQuery) ([]store.Edge, error) {
	sqlq, setting, drop, ok := s.edgesSQL(q)
	if !ok {
		return nil, nil
	}
	n := q.Limit
	if n <= 0 {
		n = s.edges.count()
	}
	out, ids := make([]store.Edge, 0, n), make([]uint32, 0, n)
	err := s.eachRow(ctx, setting, sqlq, func(v []driver.Value) error {
		var e store.Edge
		id, ok := v[0].(uint32)
		if !ok {
			return fmt.Errorf("edge id of type %T", v[0])
		}
		if drop[id] || (q.Limit > 0 && len(out) == q.Limit) {
			return nil
		}
		for i, dst := range [...]*uint64{&e.Flows, &e.BytesClientToServer, &e.BytesServerToClient, &e.Opened, &e.Closed,
			&e.Refused, &e.Timeout, &e.Reset, &e.Retransmits, &e.PeakBytesPerMinute} {
			switch x := v[i+1].(type) {
			case uint64:
				*dst = x
			case nil:
			default:
				return fmt.Errorf("edge counter of type %T", x)
			}
		}
		e.EdgeKey = s.keyOf(id)
		out = append(out, e)
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("querying edges: %w", err)
	}
	// Ties in the order come back by edge id; present them by name.
	perm := make([]int, len(out))
	for i := range perm {
		perm[i] = i
	}
	sort.Slice(perm, func(a, b int) bool {
		x, y := &out[perm[a]], &out[perm[b]]
		if vx, vy := x.Value(q.Order), y.Value(q.Order); vx != vy {
			return vx > vy
		}
		return x.EdgeKey.Less(y.EdgeKey)
	})
	sorted, sortedIDs := make([]store.Edge, len(out)), make([]uint32, len(out))
	for i, j := range perm {
		sorted[i], sortedIDs[i] = out[j], ids[j]
	}
	out, ids = sorted, sortedIDs
	if !q.WithRTT || len(out) == 0 {
		return out, nil
	}
	idx := make(map[uint32]int, len(ids))
	for i, id := range ids {
		idx[id] = i
		out[i].RTT = &sketch.Sketch{}
	}
	err = s.eachRTT(ctx, fmt.Sprintf(`SELECT edge, rtt FROM %s WHERE edge IN (%s)`, s.edgeSource(q.Range), idList(ids)),
		func(scan func(...any) error) error {
			var id uint32
			var b []byte
			if err := scan(&id, &b); err != nil {
				return err
			}
			if i, ok := idx[id]; ok {
				return out[i].RTT.MergeEncoded(b)
			}
			return nil
		})
	return out, err
}

// eachRow runs a query on a pooled connection, after setting (a SET statement, per
// connection), and hands each row's driver values to f, skipping database/sql's conversions
// (reflection per column): the edges of a whole cluster are tens of thousands of rows of
// eleven columns.
func (s *Store) eachRow(ctx context.Context, setting, q string, f func([]driver.Value) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		if _, err := dc.(driver.ExecerContext).ExecContext(ctx, setting, nil); err != nil {
			return err
		}
		rows, err := dc.(driver.QueryerContext).QueryContext(ctx, q, nil)
		if err != nil {
			return err
		}
		defer rows.Close()
		v := make([]driver.Value, len(rows.Columns()))
		for {
			if err := rows.Next(v); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			if err := f(v); err != nil {
				return err
			}
		}
	})
}

func (s *Store) eachRTT(ctx context.Context, q string, f func(scan func(...any) error) error) error {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("querying RTT: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows.Scan); err != nil {
			return fmt.Errorf("reading RTT: %w", err)
		}
	}
	return rows.Err()
}

func setList(m map[uint32]bool) []uint32 {
	out := make([]uint32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func dirList(dirs []store.Direction) string {
	ids := make([]uint32, len(dirs))
	for i, d := range dirs {
		ids[i] = uint32(d)
	}
	return idList(ids)
}

// NodeHealth implements store.Querier.
func (s *Store) NodeHealth(ctx context.Context, r store.Range) ([]store.NodeStats, error) {
	edges, err := s.Edges(ctx, store.EdgeQuery{Range: r, Directions: []store.Direction{store.NodeOut, store.NodeIn}, WithRTT: true})
	if err != nil {
		return nil, err
	}
	byNode := map[string]*store.NodeStats{}
	var order []string
	for _, e := range edges {
		name, c := e.Src, &store.NodeStats{}
		if e.Direction == store.NodeIn {
			name = e.Dst
		}
		if c = byNode[name]; c == nil {
			c = &store.NodeStats{Node: strings.TrimPrefix(name, "node/"), RTT: &sketch.Sketch{}}
			n := s.dict.node(mustID(s.dict.nodeIDOf(name)))
			if c.Zone = n.Zone; c.Zone == "" {
				c.Zone = n.Labels["topology.kubernetes.io/zone"]
			}
			byNode[name] = c
			order = append(order, name)
		}
		if e.Direction == store.NodeIn {
			c.In.Add(e.Counters)
		} else {
			c.Out.Add(e.Counters)
			c.RTT.Merge(e.RTT)
		}
	}
	out := make([]store.NodeStats, 0, len(order))
	for _, n := range order {
		out = append(out, *byNode[n])
	}
	return out, nil
}

func mustID(id uint32, _ bool) uint32 { return id }

// ZoneHealth implements store.Querier.
func (s *Store) ZoneHealth(ctx context.Context, r store.Range) ([]store.ZoneStats, error) {
	edges, err := s.Edges(ctx, store.EdgeQuery{Range: r, Directions: []store.Direction{store.ZonePath}, WithRTT: true})
	if err != nil {
		return nil, err
	}
	out := make([]store.ZoneStats, 0, len(edges))
	for _, e := range edges {
		out = append(out, store.ZoneStats{Client: strings.TrimPrefix(e.Src, "zone/"), Server: strings.TrimPrefix(e.Dst, "zone/"),
			Counters: e.Counters, RTT: e.RTT})
	}
	return out, nil
}

// EdgeSeries implements store.Querier.
func (s *Store) EdgeSeries(ctx context.Context, key store.EdgeKey, r store.Range, step time.Duration) ([]store.Point, error) {
	where, ok := s.keyWhere(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	stepMin := max(int64(step/time.Minute), 1)
	rows, err := s.db.QueryContext(ctx, `SELECT t - t % `+strconv.FormatInt(stepMin, 10)+` AS b, flows, bcs, bsc, opened, closed,
		refused, timeout, reset, retrans, peak, rtt FROM `+s.edgeSourceStep(r, step)+` WHERE `+where+` ORDER BY b`)
	if err != nil {
		return nil, fmt.Errorf("querying edge series: %w", err)
	}
	defer rows.Close()
	var out []store.Point
	var sk []*sketch.Sketch
	for rows.Next() {
		var b int64
		var c store.Counters
		var rtt []byte
		if err := rows.Scan(append(append([]any{&b}, counterDest(&c)...), &rtt)...); err != nil {
			return nil, fmt.Errorf("reading edge series: %w", err)
		}
		t := time.Unix(b*60, 0).UTC()
		if len(out) == 0 || !out[len(out)-1].Time.Equal(t) {
			out = append(out, store.Point{Time: t})
			sk = append(sk, &sketch.Sketch{})
		}
		out[len(out)-1].Counters.Add(c)
		if err := sk[len(sk)-1].MergeEncoded(rtt); err != nil {
			return nil, fmt.Errorf("reading edge series: %w", err)
		}
	}
	for i := range out {
		out[i].RTTp50us, out[i].RTTp99us = sk[i].Quantile(0.5), sk[i].Quantile(0.99)
	}
	return out, rows.Err()
}

// keyWhere is the SQL condition selecting an edge's rows.
func (s *Store) keyWhere(k store.EdgeKey) (string, bool) {
	src, ok1 := s.dict.nodeIDOf(k.Src)
	dst, ok2 := s.dict.nodeIDOf(k.Dst)
	svc, ok3 := s.dict.nodeIDOf(k.Service)
	if !ok1 || !ok2 || (k.Service != "" && !ok3) {
		return "", false
	}
	s.edges.mu.RLock()
	id, ok := s.edges.ids[edgeIDs{src: src, dst: dst, svc: svc, port: k.Port, dir: uint8(k.Direction)}]
	s.edges.mu.RUnlock()
	return fmt.Sprintf("edge = %d", id), ok
}

const flowColumns = `seq, end_ms, dur_ms, client, server, coalesce(vip, 0), cport, sport, coalesce(caddr, ''), coalesce(saddr, ''),
	bcs, bsc, retrans, bretrans, csrtt, (csrtt::BIGINT + coalesce(srtt_delta, 0))::UINTEGER, resets, outcome, flags`

// Nodes implements store.Querier.
func (s *Store) Nodes(context.Context) ([]store.Node, error) { return s.dict.allNodes(), nil }

// HasNamespace reports whether any stored node is in namespace ns.
func (s *Store) HasNamespace(ns string) bool { return s.dict.hasNamespace(ns) }

// Coverage implements store.Querier.
func (s *Store) Coverage(ctx context.Context) (store.Coverage, error) {
	var rawFrom, latest, minFrom, hourFrom sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT (SELECT min(end_ms) FROM flows), (SELECT max(end_ms) FROM flows),
		(SELECT min(t) FROM edges_minute), (SELECT min(t) FROM edges_hour)`).Scan(&rawFrom, &latest, &minFrom, &hourFrom)
	if err != nil {
		return store.Coverage{}, fmt.Errorf("querying coverage: %w", err)
	}
	var c store.Coverage
	if rawFrom.Valid {
		c.RawFrom, c.Latest = time.UnixMilli(rawFrom.Int64).UTC(), time.UnixMilli(latest.Int64).UTC()
	}
	if minFrom.Valid {
		c.MinuteFrom = time.Unix(minFrom.Int64*60, 0).UTC()
	}
	if hourFrom.Valid {
		c.HourFrom = time.Unix(hourFrom.Int64*60, 0).UTC()
	}
	return c, nil
}
