package flowtable

import (
	"net/netip"

	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
)

// close builds the final record of a socket and holds it for one Apply.
func (t *Table) close(e *tracer.Event) {
	k := t.key(e)
	r := flow.Record{}
	cv, tracked := t.conns[k]
	delete(t.conns, k)
	var c *conn
	if tracked {
		c = &cv
	}

	start, startKnown, dir, id := e.StartNs, e.Flags&tracer.FlagStartKnown != 0, direction(e.Flags), e.Key
	if t.cfg.KeyBySocketAddr {
		id = 0
		if o, ok := t.opens[k]; ok {
			delete(t.opens, k)
			start, startKnown, dir, id = o.start, true, direction(o.flags), o.id
		}
	}
	var last counters
	if c != nil {
		last = c.last
		r.ResetsSent = c.resetsSent
		if !startKnown || c.startKnown {
			start, startKnown = c.start, c.startKnown
		}
		if dir == flow.DirectionUnknown {
			dir = c.role.direction()
		}
		if id == 0 {
			id = c.id
		}
	}
	if id == 0 {
		id = t.newID()
	}
	if dir == flow.DirectionUnknown {
		dir = t.inferDirection(e)
		t.stats.DirectionInferred++
	}
	if !startKnown && c == nil {
		start = e.EndNs // never seen open: the close is all we know
	}
	total := payloadCounters(e, dir == flow.Client)
	fill(&r, e, total.minus(last))
	r.ConnID = id
	r.Direction = dir
	r.Start, r.End = t.wall(start), t.wall(e.EndNs)
	r.StartKnown = startKnown
	if c != nil {
		r.Workload = *c.workload
	} else {
		r.Workload = t.workload(e, dir)
	}
	r.ResetsReceived = uint32(e.ResetsReceived)
	r.Outcome = outcome(e.State, e.SkErr, r.ResetsReceived)
	if r.ResetsReceived == 0 && (r.Outcome == flow.Reset || r.Outcome == flow.Refused) {
		r.ResetsReceived = 1 // fallback hooks: no slot, the socket error tells
	}
	if n, ok := t.early[k]; ok {
		r.ResetsSent += n
		delete(t.early, k)
	}
	if !t.cfg.ResetEvents && r.Outcome == flow.Aborted && abortSendsReset(e.State) && r.ResetsSent == 0 {
		r.ResetsSent = 1
	}
	r.CloseState = tracer.StateName(e.State)
	t.hold = append(t.hold, held{key: k, rec: r})
	t.stats.Finals++
}

func direction(flags uint16) flow.Direction {
	switch {
	case flags&tracer.FlagActive != 0:
		return flow.Client
	case flags&tracer.FlagPassive != 0:
		return flow.Server
	}
	return flow.DirectionUnknown
}

// inferDirection guesses the role of a socket whose open was not observed: a listener on its
// local port in its namespace makes it a server; a listener bound to its remote address and
// port (in any namespace), or a loopback peer listening in its namespace, a client; otherwise
// the ephemeral port range decides, and last the port order (ephemeral ports are high).
func (t *Table) inferDirection(e *tracer.Event) flow.Direction {
	if _, ok := t.listeners[listenKey{e.Netns, e.Sport}]; ok {
		return flow.Server
	}
	_, remote := e.Addrs()
	if _, ok := t.bound[netip.AddrPortFrom(remote, e.Dport)]; ok {
		return flow.Client
	}
	if _, ok := t.listeners[listenKey{e.Netns, e.Dport}]; ok && remote.IsLoopback() {
		return flow.Client
	}
	lo, hi := t.cfg.EphemeralPorts[0], t.cfg.EphemeralPorts[1]
	localEph, remoteEph := e.Sport >= lo && e.Sport <= hi, e.Dport >= lo && e.Dport <= hi
	switch {
	case localEph && !remoteEph:
		return flow.Client
	case remoteEph && !localEph:
		return flow.Server
	case e.Sport > e.Dport:
		return flow.Client
	}
	return flow.Server
}

// workload resolves a socket's workload, remembering the last answer: consecutive records
// mostly come from the same workload. The memo is dropped at every Apply, so it never outlives
// the resolver's own cache policy by more than one drain. A server socket without a captured
// process takes its listener's (when one process alone holds the listener).
func (t *Table) workload(e *tracer.Event, dir flow.Direction) flow.Workload {
	pid, comm := e.Pid, e.Comm
	if pid == 0 && dir == flow.Server && t.cfg.ListenerOwner != nil {
		pid, comm = t.listenerOwner(e)
	}
	m := &t.memo
	if m.valid && m.cgroup == e.CgroupID && m.pid == pid && m.comm == comm {
		return m.w
	}
	w := t.resolver.Workload(e.CgroupID, pid, comm)
	*m = memo{valid: true, cgroup: e.CgroupID, pid: pid, comm: comm, w: w}
	return w
}

// listenerOwner names a server socket by the single process holding its listener, counting
// how often that fails and why.
func (t *Table) listenerOwner(e *tracer.Event) (uint32, string) {
	l, ok := t.listeners[listenKey{e.Netns, e.Sport}]
	if !ok {
		t.stats.ServerNoListener++
		return 0, ""
	}
	pid, comm, ok := t.cfg.ListenerOwner(l.inode)
	if !ok {
		t.stats.ServerOwnerUnknown++
		return 0, ""
	}
	t.stats.ServerNamed++
	return pid, comm
}
