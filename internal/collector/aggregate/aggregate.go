// Package aggregate turns attributed connections into per-minute edges (source workload →
// destination workload, Service or network, port, direction) with byte, connection, failure
// and retransmit counters and a mergeable RTT distribution, and rolls minutes up into hours.
package aggregate

import (
	"sort"
	"sync"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/sketch"
	"github.com/flowscope/flowscope/internal/store"
)

// Config bounds the aggregator.
type Config struct {
	// Grace is how long after a minute ends its edges stay open for late records.
	Grace time.Duration
	// MaxKeys bounds the edge keys held across open minutes; records of new keys beyond it are
	// counted as dropped from the aggregates (they are still stored raw).
	MaxKeys int
	// MaxOpenConns bounds the connections remembered as open (to count each one opened once);
	// beyond it a connection's later records may count it opened again.
	MaxOpenConns int
	// OpenConnTTL forgets an open connection not seen for this long (its exporter went away).
	OpenConnTTL time.Duration
}

// DefaultConfig suits one collector of a large cluster.
var DefaultConfig = Config{Grace: 30 * time.Second, MaxKeys: 1 << 20, MaxOpenConns: 4 << 20, OpenConnTTL: 24 * time.Hour}

// Stats are the aggregator's own counters.
type Stats struct {
	Records       uint64 // records added
	DroppedKeys   uint64 // records not aggregated because MaxKeys was reached
	OpenConnsFull uint64 // connections not remembered because MaxOpenConns was reached
	Keys          int    // edge keys currently held
	OpenConns     int    // connections currently remembered as open
}

type acc struct {
	store.Counters
	rtt sketch.Sketch
}

type bucket struct {
	edges  map[store.EdgeKey]*acc
	minSeq uint64
}

// Aggregator accumulates minute edges. It is safe for concurrent use.
type Aggregator struct {
	cfg Config

	mu      sync.Mutex
	minutes map[int64]*bucket // by unix minute
	keys    int
	open    map[string]int64 // conn key → unix minute last seen
	lastSeq uint64
	stats   Stats
}

// New returns an empty aggregator.
func New(cfg Config) *Aggregator {
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultConfig.Grace
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultConfig.MaxKeys
	}
	if cfg.MaxOpenConns <= 0 {
		cfg.MaxOpenConns = DefaultConfig.MaxOpenConns
	}
	if cfg.OpenConnTTL <= 0 {
		cfg.OpenConnTTL = DefaultConfig.OpenConnTTL
	}
	return &Aggregator{cfg: cfg, minutes: map[int64]*bucket{}, open: map[string]int64{}}
}

// Keys returns the edge keys a connection contributes to: its edge, for ends on a Kubernetes
// node the node totals, and when either end has a zone the path between the two zones.
func Keys(c flow.Conn) []store.EdgeKey {
	k := store.EdgeKey{Src: c.Client.Name(), Dst: c.Server.Name(), Port: c.Server.Port, Direction: store.Internal}
	if c.VIP != nil {
		k.Service = c.VIP.Name()
	}
	switch {
	case store.Outside(c.Server):
		k.Direction = store.Egress
	case store.Outside(c.Client):
		k.Direction = store.Ingress
	}
	keys := []store.EdgeKey{k}
	if c.Client.Node != "" && !store.Outside(c.Client) {
		keys = append(keys, store.EdgeKey{Src: "node/" + c.Client.Node, Direction: store.NodeOut})
	}
	if c.Server.Node != "" && !store.Outside(c.Server) {
		keys = append(keys, store.EdgeKey{Dst: "node/" + c.Server.Node, Direction: store.NodeIn})
	}
	if cz, sz := zoneOf(c.Client), zoneOf(c.Server); cz != "" || sz != "" {
		keys = append(keys, store.EdgeKey{Src: store.ZoneNode(cz), Dst: store.ZoneNode(sz), Direction: store.ZonePath})
	}
	return keys
}

// zoneOf is an end's zone; ends outside the cluster have none.
func zoneOf(e flow.Endpoint) string {
	if store.Outside(e) {
		return ""
	}
	return e.Zone
}

// Add aggregates one connection record; seq is its position in the store's ingestion order
// (increasing), so Flush can say up to where everything is aggregated.
func (a *Aggregator) Add(c flow.Conn, seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stats.Records++
	a.lastSeq = max(a.lastSeq, seq)
	minute := c.End.Unix() / 60
	b := a.minutes[minute]
	if b == nil {
		b = &bucket{edges: map[store.EdgeKey]*acc{}, minSeq: seq}
		a.minutes[minute] = b
	}
	b.minSeq = min(b.minSeq, seq)
	d := a.delta(c, minute)
	rtt := c.ClientSrttUs
	if rtt == 0 {
		rtt = c.ServerSrttUs
	}
	for _, k := range Keys(c) {
		e := b.edges[k]
		if e == nil {
			if a.keys >= a.cfg.MaxKeys {
				a.stats.DroppedKeys++
				continue
			}
			e = &acc{}
			b.edges[k] = e
			a.keys++
		}
		e.Add(d)
		e.rtt.Add(rtt)
	}
}

// delta computes the counters one record adds, and tracks which connections are open.
func (a *Aggregator) delta(c flow.Conn, minute int64) store.Counters {
	d := store.Counters{
		Flows:               1,
		BytesClientToServer: c.BytesClientToServer,
		BytesServerToClient: c.BytesServerToClient,
		Retransmits:         c.Retransmits,
	}
	_, seen := a.open[c.ConnKey]
	if !seen || c.ConnKey == "" {
		d.Opened = 1
	}
	if c.Interim && c.ConnKey != "" {
		if seen || len(a.open) < a.cfg.MaxOpenConns {
			a.open[c.ConnKey] = minute
		} else {
			a.stats.OpenConnsFull++
		}
		return d
	}
	delete(a.open, c.ConnKey)
	d.Closed = 1
	switch c.Outcome {
	case flow.Refused:
		d.Refused = 1
	case flow.Timeout:
		d.Timeout = 1
	case flow.Reset, flow.Aborted:
		d.Reset = 1
	}
	return d
}

// Flush returns the rows of every minute that ended at least Grace before now (every minute
// when all is set), sorted by time and key, and forgets them. watermark is the highest
// ingestion sequence number up to which every added record is in rows returned so far.
func (a *Aggregator) Flush(now time.Time, all bool) (rows []store.EdgeRow, watermark uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	limit := now.Add(-a.cfg.Grace).Unix()/60 - 1 // last minute whose end is ≤ now-grace
	var done []int64
	for m := range a.minutes {
		if all || m <= limit {
			done = append(done, m)
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i] < done[j] })
	for _, m := range done {
		b := a.minutes[m]
		t := time.Unix(m*60, 0).UTC()
		start := len(rows)
		for k, e := range b.edges {
			r := store.EdgeRow{Time: t, Key: k, Counters: e.Counters, RTT: e.rtt}
			r.PeakBytesPerMinute = r.BytesClientToServer + r.BytesServerToClient
			rows = append(rows, r)
		}
		sortRows(rows[start:])
		a.keys -= len(b.edges)
		delete(a.minutes, m)
	}
	watermark = a.lastSeq
	for _, b := range a.minutes {
		watermark = min(watermark, b.minSeq-1)
	}
	a.expireOpen(now)
	return rows, watermark
}

// OpenRows returns copies of the rows of the minutes Flush(now) would not return yet (the
// current minute and those within Grace of their end), sorted by time and key; the
// aggregator keeps them.
func (a *Aggregator) OpenRows(now time.Time) []store.EdgeRow {
	a.mu.Lock()
	defer a.mu.Unlock()
	limit := now.Add(-a.cfg.Grace).Unix()/60 - 1
	var rows []store.EdgeRow
	for m, b := range a.minutes {
		if m <= limit {
			continue
		}
		t := time.Unix(m*60, 0).UTC()
		for k, e := range b.edges {
			r := store.EdgeRow{Time: t, Key: k, Counters: e.Counters}
			r.PeakBytesPerMinute = r.BytesClientToServer + r.BytesServerToClient
			r.RTT.Merge(&e.rtt)
			rows = append(rows, r)
		}
	}
	sortRows(rows)
	return rows
}

func (a *Aggregator) expireOpen(now time.Time) {
	cutoff := now.Add(-a.cfg.OpenConnTTL).Unix() / 60
	for k, m := range a.open {
		if m < cutoff {
			delete(a.open, k)
		}
	}
}

// Stats returns the aggregator's counters.
func (a *Aggregator) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.Keys, s.OpenConns = a.keys, len(a.open)
	return s
}

func sortRows(rows []store.EdgeRow) {
	sort.Slice(rows, func(i, j int) bool { return lessRow(&rows[i], &rows[j]) })
}

func lessRow(a, b *store.EdgeRow) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.Before(b.Time)
	}
	return a.Key.Less(b.Key)
}

// Rollup merges rows into rows of the coarser step (e.g. minutes into hours): counters add,
// peaks take the maximum, RTT sketches merge. The result is sorted by time and key.
func Rollup(rows []store.EdgeRow, step time.Duration) []store.EdgeRow {
	type key struct {
		t int64
		k store.EdgeKey
	}
	idx := map[key]int{}
	var out []store.EdgeRow
	for i := range rows {
		r := &rows[i]
		t := r.Time.Truncate(step)
		kk := key{t.Unix(), r.Key}
		j, ok := idx[kk]
		if !ok {
			j = len(out)
			idx[kk] = j
			out = append(out, store.EdgeRow{Time: t, Key: r.Key})
		}
		out[j].Counters.Add(r.Counters)
		out[j].RTT.Merge(&r.RTT)
	}
	sortRows(out)
	return out
}

// Grace is how long a minute stays open after it ends.
func (a *Aggregator) Grace() time.Duration { return a.cfg.Grace }
