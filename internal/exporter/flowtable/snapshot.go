package flowtable

import (
	"net/netip"

	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
)

// SnapshotBegin marks that snapshots are being read from the kernel since monotonic time
// nowNs. Closes applied until SnapshotEnd are remembered, so that a socket listed by a snapshot
// but closed meanwhile is not reported again. Between the two calls, give every namespace's
// listeners to Listeners first and then its sockets to Snapshot: direction inference for a
// socket whose open was not seen looks at the listeners of all namespaces.
func (t *Table) SnapshotBegin(nowNs uint64) {
	t.snapFrom = nowNs
	clear(t.snapClosed)
}

// SnapshotEnd ends the snapshot pass begun by SnapshotBegin.
func (t *Table) SnapshotEnd() {
	t.snapFrom = 0
	clear(t.snapClosed)
}

// Listeners replaces what the table knows of netns's listening sockets with the KindListen
// events of evs.
func (t *Table) Listeners(netns uint32, evs []tracer.Event) {
	for k, l := range t.listeners {
		if k.netns == netns {
			delete(t.listeners, k)
			if l.bound.IsValid() {
				delete(t.bound, netip.AddrPortFrom(l.bound, k.port))
			}
		}
	}
	for i := range evs {
		e := &evs[i]
		if e.Kind != tracer.KindListen {
			continue
		}
		local, _ := e.Addrs()
		l := listener{}
		if !local.IsUnspecified() {
			l.bound = local
			t.bound[netip.AddrPortFrom(local, e.Sport)] = struct{}{}
		}
		t.listeners[listenKey{netns, e.Sport}] = l
	}
}

// Snapshot applies one network namespace's iterator result, read at the time given to
// SnapshotBegin, and appends interim records for the connections that are due: first seen
// sockets whose open was not observed (they predate the exporter) at once, the others when
// their last record is older than the interval.
func (t *Table) Snapshot(netns uint32, evs []tracer.Event, out []flow.Record) []flow.Record {
	now := t.snapFrom
	seen := make(map[uint64]bool, len(evs))
	for i := range evs {
		e := &evs[i]
		if e.Kind != tracer.KindSnapshot || e.State == tracer.StateSynSent || e.State == tracer.StateSynRecv {
			continue
		}
		k := t.key(e)
		if t.snapClosed[k] {
			t.stats.LateSnapshots++
			continue
		}
		c := t.conns[k]
		if c == nil {
			if len(t.conns) >= t.cfg.MaxConns {
				t.stats.TableFull++
				continue
			}
			c = t.track(e, now)
			t.conns[k] = c
		}
		seen[k] = true
		c.misses = 0
		if c.lastReport == 0 && c.startKnown && now-c.start < uint64(t.cfg.Interval) {
			continue
		}
		if c.lastReport != 0 && now-c.lastReport < uint64(t.cfg.Interval) {
			continue
		}
		out = append(out, t.interim(c, e, now))
	}
	t.forgetVanished(netns, seen)
	return out
}

func (t *Table) track(e *tracer.Event, now uint64) *conn {
	c := &conn{id: e.Key, start: e.StartNs, startKnown: e.Flags&tracer.FlagStartKnown != 0,
		dir: direction(e.Flags), netns: e.Netns}
	if t.cfg.KeyBySocketAddr {
		c.id, c.startKnown = 0, false
		if o, ok := t.opens[e.SkAddr]; ok {
			c.id, c.start, c.startKnown, c.dir = o.id, o.start, true, direction(o.flags)
		}
		if c.id == 0 {
			c.id = t.newID()
		}
	}
	if !c.startKnown {
		c.start = now // first seen; the record says start_known=false
	}
	if c.dir == flow.DirectionUnknown {
		c.dir = t.inferDirection(e)
		t.stats.DirectionInferred++
	}
	if n, ok := t.early[t.key(e)]; ok {
		c.resetsSent += n
		delete(t.early, t.key(e))
	}
	c.workload = t.workload(e)
	return c
}

func (t *Table) interim(c *conn, e *tracer.Event, now uint64) flow.Record {
	total := payloadCounters(e, c.dir == flow.Client)
	r := flow.Record{ConnID: c.id, Direction: c.dir, Interim: true, StartKnown: c.startKnown,
		Start: t.wall(c.start), End: t.wall(e.EndNs), Workload: c.workload,
		Outcome: flow.Open, CloseState: tracer.StateName(e.State), ResetsSent: c.resetsSent}
	fill(&r, e, total.minus(c.last))
	c.last = total
	c.lastReport = now
	c.resetsSent = 0
	t.stats.Interims++
	return r
}

// forgetVanished drops tracked connections of netns that two snapshots in a row did not list:
// their close event was lost (ring full), so no final record will come.
func (t *Table) forgetVanished(netns uint32, seen map[uint64]bool) {
	for k, c := range t.conns {
		if c.netns != netns || seen[k] {
			continue
		}
		c.misses++
		if c.misses >= 2 {
			delete(t.conns, k)
			t.stats.Vanished++
		}
	}
}

// PruneNamespaces forgets tracked connections of network namespaces that no longer exist
// (counted as vanished: their close was not seen).
func (t *Table) PruneNamespaces(alive func(netns uint32) bool) {
	for k, c := range t.conns {
		if !alive(c.netns) {
			delete(t.conns, k)
			t.stats.Vanished++
		}
	}
}
