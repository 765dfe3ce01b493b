package flowtable

import (
	"net/netip"

	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
)

// A snapshot pass reads the open sockets of every network namespace with the socket
// iterator: BeginPass, then SnapshotChunk for each namespace's events as they are read, then
// EndPass. Ring events must not be applied during a pass: a socket that closes while the pass
// runs is then either not listed (its close comes later, with all its counters) or listed with
// counters older than its close (the close comes later and reports the rest). Either way every
// byte is reported once.
//
// Sockets whose open was never seen (they predate the exporter, or their start slot was
// overwritten) and whose role is unknown wait until EndPass, when the listeners of every
// namespace are known, to have it inferred.

// BeginPass starts a snapshot pass at monotonic time nowNs.
func (t *Table) BeginPass(nowNs uint64) {
	t.pass.gen++
	t.pass.now = nowNs
	t.pass.pending = t.pass.pending[:0]
	clear(t.pass.listeners)
	clear(t.pass.netns)
}

// SnapshotChunk applies a chunk of one namespace's iterator events and appends the interim
// records that are due: at once for a socket whose open was not observed (it predates the
// exporter; with the fallback hooks, from its second pass, since its open event may still be
// in the ring), else when its last record is older than the interval.
func (t *Table) SnapshotChunk(netns uint32, evs []tracer.Event, out []flow.Record) []flow.Record {
	t.pass.netns[netns] = true
	for i := range evs {
		e := &evs[i]
		switch {
		case e.Kind == tracer.KindListen:
			t.pass.listeners = append(t.pass.listeners, listenerOf(netns, e))
			continue
		case e.Kind != tracer.KindSnapshot || e.State == tracer.StateSynSent || e.State == tracer.StateSynRecv:
			continue
		}
		k := t.key(e)
		if c, ok := t.conns[k]; ok {
			c.seen = t.pass.gen
			c.misses = 0
			c.unsure = false // listed twice and no open came: it predates the exporter (or its open was lost)
			out = t.maybeInterim(k, c, e, out)
			continue
		}
		if direction(e.Flags) == flow.DirectionUnknown && !t.cfg.KeyBySocketAddr {
			if len(t.pass.pending) < t.cfg.MaxConns {
				t.pass.pending = append(t.pass.pending, *e)
			} else {
				t.stats.TableFull++
			}
			continue
		}
		out = t.trackNew(k, e, out)
	}
	return out
}

// EndPass applies the listeners seen, infers the role of the pending sockets, and forgets
// tracked connections of the namespaces read that were not listed twice in a row (their close
// event was lost) and of namespaces that no longer exist (alive reports which do).
func (t *Table) EndPass(alive func(netns uint32) bool, out []flow.Record) []flow.Record {
	for k, l := range t.listeners {
		if t.pass.netns[k.netns] || !alive(k.netns) {
			delete(t.listeners, k)
			if l.bound.IsValid() {
				delete(t.bound, netip.AddrPortFrom(l.bound, k.port))
			}
		}
	}
	for _, l := range t.pass.listeners {
		if t.cfg.ListenerOwner != nil {
			t.cfg.ListenerOwner(l.inode) // find a new listener's process before its first close (cached; scans are rate-limited)
		}
		t.listeners[l.key] = listener{bound: l.bound, inode: l.inode}
		if l.bound.IsValid() {
			t.bound[netip.AddrPortFrom(l.bound, l.key.port)] = struct{}{}
		}
	}
	for i := range t.pass.pending {
		e := &t.pass.pending[i]
		out = t.trackNew(t.key(e), e, out)
	}
	t.pass.pending = t.pass.pending[:0]
	for k, c := range t.conns {
		switch {
		case !alive(c.netns):
			delete(t.conns, k)
			t.stats.Vanished++
		case t.pass.netns[c.netns] && c.seen != t.pass.gen:
			c.misses++
			if c.misses >= 2 {
				delete(t.conns, k)
				t.stats.Vanished++
				continue
			}
			t.conns[k] = c
		}
	}
	return out
}

// Listener is a listening socket as the last snapshot pass of its namespace saw it.
type Listener struct {
	Port  uint16
	Bound netip.Addr // the address it is bound to; invalid for a wildcard
	Pid   uint32     // the single process that holds it (Config.ListenerOwner); 0 when unknown
}

// Listeners returns the listening sockets of one namespace (in no particular order).
func (t *Table) Listeners(netns uint32) []Listener {
	var out []Listener
	for k, l := range t.listeners {
		if k.netns != netns {
			continue
		}
		li := Listener{Port: k.port, Bound: l.bound}
		if t.cfg.ListenerOwner != nil {
			if pid, _, ok := t.cfg.ListenerOwner(l.inode); ok {
				li.Pid = pid
			}
		}
		out = append(out, li)
	}
	return out
}

type passListener struct {
	key   listenKey
	bound netip.Addr
	inode uint64
}

func listenerOf(netns uint32, e *tracer.Event) passListener {
	local, _ := e.Addrs()
	l := passListener{key: listenKey{netns, e.Sport}, inode: e.Inode}
	if !local.IsUnspecified() {
		l.bound = local
	}
	return l
}

// trackNew starts tracking a socket first seen by a snapshot.
func (t *Table) trackNew(k uint64, e *tracer.Event, out []flow.Record) []flow.Record {
	if len(t.conns) >= t.cfg.MaxConns {
		t.stats.TableFull++
		return out
	}
	c := conn{id: e.Key, start: e.StartNs, startKnown: e.Flags&tracer.FlagStartKnown != 0,
		role: roleOf(direction(e.Flags)), netns: e.Netns, seen: t.pass.gen}
	if t.cfg.KeyBySocketAddr {
		c.id, c.startKnown = 0, false
		if o, ok := t.opens[e.SkAddr]; ok {
			c.id, c.start, c.startKnown, c.role = o.id, o.start, true, roleOf(direction(o.flags))
		}
		if c.id == 0 {
			c.id, c.unsure = t.newID(), true
		}
	}
	if !c.startKnown {
		c.start = t.pass.now // first seen; its records say start_known=false
	}
	if c.role == roleUnknown {
		c.role = roleOf(t.inferDirection(e))
		t.stats.DirectionInferred++
	}
	if n, ok := t.early[k]; ok {
		c.resetsSent += n
		delete(t.early, k)
	}
	c.workload = t.intern(t.workload(e, c.role.direction()))
	return t.maybeInterim(k, c, e, out)
}

// maybeInterim stores c and appends an interim record if one is due.
func (t *Table) maybeInterim(k uint64, c conn, e *tracer.Event, out []flow.Record) []flow.Record {
	now, iv := t.pass.now, uint64(t.cfg.Interval)
	due := c.lastReport == 0 && !c.unsure && (!c.startKnown || since(now, c.start) >= iv) ||
		c.lastReport != 0 && since(now, c.lastReport) >= iv
	if due {
		out = append(out, t.interim(&c, e, now))
	}
	t.conns[k] = c
	return out
}

func (t *Table) interim(c *conn, e *tracer.Event, now uint64) flow.Record {
	total := payloadCounters(e, c.role == roleClient)
	r := flow.Record{ConnID: c.id, Direction: c.role.direction(), Interim: true, StartKnown: c.startKnown,
		Start: t.wall(c.start), End: t.wall(e.EndNs), Workload: *c.workload,
		Outcome: flow.Open, CloseState: tracer.StateName(e.State), ResetsSent: c.resetsSent}
	fill(&r, e, total.minus(c.last))
	c.last = total
	c.lastReport = now
	c.resetsSent = 0
	t.stats.Interims++
	return r
}

// since is now−then, or 0 when then is later: a pass takes its time when it begins, and a
// socket opened while the pass runs starts after it.
func since(now, then uint64) uint64 {
	if now <= then {
		return 0
	}
	return now - then
}
