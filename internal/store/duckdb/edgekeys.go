package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"

	"github.com/flowscope/flowscope/internal/store"
)

// edgeIDs is an edge key in dictionary ids.
type edgeIDs struct {
	src, dst, svc uint32
	port          uint16
	dir           uint8
}

// edgeKeys numbers edge keys, so that edge rows carry one small integer and queries group by
// it (DuckDB aggregates a dense integer key much faster than five columns).
type edgeKeys struct {
	mu   sync.RWMutex
	ids  map[edgeIDs]uint32
	keys []edgeIDs // by id; 0 unused

	pending []edgeIDs // allocated in the open write transaction
	pendIdx map[edgeIDs]uint32
}

func loadEdgeKeys(ctx context.Context, db *sql.DB) (*edgeKeys, error) {
	k := &edgeKeys{ids: map[edgeIDs]uint32{}, keys: []edgeIDs{{}}, pendIdx: map[edgeIDs]uint32{}}
	rows, err := db.QueryContext(ctx, `SELECT id, src, dst, svc, port, dir FROM edge_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("loading edge keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uint32
		var e edgeIDs
		if err := rows.Scan(&id, &e.src, &e.dst, &e.svc, &e.port, &e.dir); err != nil {
			return nil, fmt.Errorf("loading edge keys: %w", err)
		}
		for uint32(len(k.keys)) <= id {
			k.keys = append(k.keys, edgeIDs{})
		}
		k.keys[id] = e
		k.ids[e] = id
	}
	return k, rows.Err()
}

// idsOf resolves an edge key to dictionary ids, allocating graph nodes in p.
func (s *Store) idsOf(k store.EdgeKey, p *pendingDict) (edgeIDs, error) {
	var e edgeIDs
	var err error
	if e.src, err = s.dict.nodeByName(k.Src, p); err != nil {
		return e, err
	}
	if e.dst, err = s.dict.nodeByName(k.Dst, p); err != nil {
		return e, err
	}
	if e.svc, err = s.dict.nodeByName(k.Service, p); err != nil {
		return e, err
	}
	e.port, e.dir = k.Port, uint8(k.Direction)
	return e, nil
}

// resolve returns the edge id of each key, storing new ones through dc in the caller's
// transaction. New keys stay pending until commit (or rollback) after the transaction; only
// the writer calls these (wmu held).
func (k *edgeKeys) resolve(ctx context.Context, dc driver.Conn, es []edgeIDs) ([]uint32, error) {
	out := make([]uint32, len(es))
	var rows [][]driver.Value
	k.mu.RLock()
	next := uint32(len(k.keys) + len(k.pending))
	for i, e := range es {
		id, ok := k.ids[e]
		if !ok {
			if id, ok = k.pendIdx[e]; !ok {
				id = next
				next++
				k.pendIdx[e] = id
				k.pending = append(k.pending, e)
				rows = append(rows, []driver.Value{id, e.src, e.dst, e.svc, e.port, e.dir})
			}
		}
		out[i] = id
	}
	k.mu.RUnlock()
	if err := appendAll(ctx, dc, "edge_keys", rows); err != nil {
		return nil, fmt.Errorf("storing edge keys: %w", err)
	}
	return out, nil
}

// commit makes the pending keys visible; rollback forgets them (their ids are reused).
func (k *edgeKeys) commit() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, e := range k.pending {
		k.ids[e] = uint32(len(k.keys))
		k.keys = append(k.keys, e)
	}
	k.rollbackLocked()
}

func (k *edgeKeys) rollback() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rollbackLocked()
}

func (k *edgeKeys) rollbackLocked() {
	k.pending = k.pending[:0]
	clear(k.pendIdx)
}

// count is the number of edge keys known.
func (k *edgeKeys) count() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.keys) - 1
}

func (k *edgeKeys) key(id uint32) edgeIDs {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if int(id) < len(k.keys) {
		return k.keys[id]
	}
	return edgeIDs{}
}

// selection is the set of edge keys a query keeps, as DuckDB reads it fastest: a query keeping
// a quarter of the keys or more aggregates every key (in a perfect hash table) and drops the
// others from its results, which costs less than any IN or NOT IN condition on the rows (a
// list of thousands of ids becomes a join); a narrower one selects its keys with IN.
type selection struct {
	where string          // SQL condition on column edge ("" for none)
	drop  map[uint32]bool // keys to drop from the results
	many  bool            // a quarter of the keys or more
}

// filter returns the selection of the keys for which keep is true.
func (k *edgeKeys) filter(keep func(edgeIDs) bool) selection {
	var in, out []uint32
	k.mu.RLock()
	for id, e := range k.keys[1:] {
		if keep(e) {
			in = append(in, uint32(id+1))
		} else {
			out = append(out, uint32(id+1))
		}
	}
	k.mu.RUnlock()
	switch {
	case len(in) == 0:
		return selection{where: "FALSE"}
	case 3*len(in) < len(out):
		return selection{where: "edge IN (" + idList(in) + ")"}
	}
	sel := selection{many: true}
	if len(out) > 0 {
		sel.drop = make(map[uint32]bool, len(out))
		for _, id := range out {
			sel.drop[id] = true
		}
	}
	return sel
}
