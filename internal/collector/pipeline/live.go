package pipeline

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/flowscope/flowscope/internal/collector/aggregate"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/sketch"
	"github.com/flowscope/flowscope/internal/store"
)

// liveEdges keeps the minutes the store has not written yet (it writes a minute Grace after
// the minute ends) so that edge queries of ranges reaching "now" include them: the console
// shows traffic seconds after attribution decides it instead of a minute or more later.
//
// It aggregates the same connections as the store, after the store accepted them, with the
// store's Grace, and answers only for minutes the store has not closed yet: a minute is
// counted by one of the two, never both. Between the moment the store's rule closes a minute
// and its next flush (its FlushEvery), that minute is in neither.
type liveEdges struct {
	agg *aggregate.Aggregator
	now func() time.Time

	mu         sync.Mutex
	lastForget time.Time
}

// forgetEvery bounds how long closed minutes stay in the live view when nobody queries it.
const forgetEvery = 10 * time.Second

func newLiveEdges(cfg aggregate.Config, now func() time.Time) *liveEdges {
	return &liveEdges{agg: aggregate.New(cfg), now: now}
}

// sink passes connections to next and aggregates those it accepted.
func (l *liveEdges) sink(next store.Sink) store.Sink { return liveSink{next: next, live: l} }

type liveSink struct {
	next store.Sink
	live *liveEdges
}

func (s liveSink) Write(ctx context.Context, conns []flow.Conn) error {
	if err := s.next.Write(ctx, conns); err != nil {
		return err
	}
	for _, c := range conns {
		s.live.agg.Add(c, 0)
	}
	s.live.forget()
	return nil
}

// forget drops the minutes the store owns now, at most every forgetEvery (it also expires
// the aggregator's open connections, a pass over all of them), and returns now.
func (l *liveEdges) forget() time.Time {
	now := l.now()
	l.mu.Lock()
	due := now.Sub(l.lastForget) >= forgetEvery || now.Before(l.lastForget)
	if due {
		l.lastForget = now
	}
	l.mu.Unlock()
	if due {
		l.agg.Flush(now, false)
	}
	return now
}

// rows returns the open minutes' rows in [from, to) (whole minutes, as the store aligns a
// range).
func (l *liveEdges) rows(r store.Range) []store.EdgeRow {
	now := l.forget()
	from, to := r.From.Unix()/60, (r.To.Unix()+59)/60
	var out []store.EdgeRow
	for _, row := range l.agg.OpenRows(now) {
		if m := row.Time.Unix() / 60; m >= from && m < to {
			out = append(out, row)
		}
	}
	return out
}

// liveQuerier answers Edges with the store's edges plus the open minutes; everything else is
// the store's.
type liveQuerier struct {
	store.Querier
	live *liveEdges
}

func (q liveQuerier) Edges(ctx context.Context, eq store.EdgeQuery) ([]store.Edge, error) {
	rows := q.live.rows(eq.Range)
	if len(rows) == 0 {
		return q.Querier.Edges(ctx, eq)
	}
	keep, err := q.filter(ctx, eq)
	if err != nil {
		return nil, err
	}
	limit := eq.Limit
	eq.Limit = 0 // an edge's open minutes may move it into the top
	edges, err := q.Querier.Edges(ctx, eq)
	if err != nil {
		return nil, err
	}
	idx := make(map[store.EdgeKey]int, len(edges))
	for i, e := range edges {
		idx[e.EdgeKey] = i
	}
	for i := range rows {
		r := &rows[i]
		if !keep(r.Key) {
			continue
		}
		j, ok := idx[r.Key]
		if !ok {
			j = len(edges)
			idx[r.Key] = j
			edges = append(edges, store.Edge{EdgeKey: r.Key})
		}
		edges[j].Counters.Add(r.Counters)
		if eq.WithRTT {
			if edges[j].RTT == nil {
				edges[j].RTT = &sketch.Sketch{}
			}
			edges[j].RTT.Merge(&r.RTT)
		}
	}
	order := eq.Order
	slices.SortFunc(edges, func(x, y store.Edge) int {
		if vx, vy := x.Value(order), y.Value(order); vx != vy {
			if vx > vy {
				return -1
			}
			return 1
		}
		if x.EdgeKey.Less(y.EdgeKey) {
			return -1
		}
		return 1
	})
	if limit > 0 && len(edges) > limit {
		edges = edges[:limit]
	}
	return edges, nil
}

// filter returns which keys eq selects, as the store selects them: by direction (default
// internal, ingress and egress), by namespace of either end or the Service, by workload.
func (q liveQuerier) filter(ctx context.Context, eq store.EdgeQuery) (func(store.EdgeKey) bool, error) {
	dirs := eq.Directions
	if len(dirs) == 0 {
		dirs = []store.Direction{store.Internal, store.Ingress, store.Egress}
	}
	var inNS map[string]bool
	if len(eq.Namespaces) > 0 {
		nodes, err := q.Querier.Nodes(ctx)
		if err != nil {
			return nil, err
		}
		inNS = map[string]bool{}
		for _, n := range nodes {
			if slices.Contains(eq.Namespaces, n.Namespace) {
				inNS[n.ID] = true
			}
		}
	}
	return func(k store.EdgeKey) bool {
		if !slices.Contains(dirs, k.Direction) {
			return false
		}
		if inNS != nil && !inNS[k.Src] && !inNS[k.Dst] && !inNS[k.Service] {
			return false
		}
		w := eq.Workload
		return w == "" || k.Src == w || k.Dst == w || k.Service == w
	}, nil
}
