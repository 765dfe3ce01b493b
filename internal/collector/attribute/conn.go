package attribute

import (
	"net/netip"
	"time"
	"unsafe"

	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
)

// within reports whether Unix nanosecond moments a and b are at most tol apart.
func within(a, b int64, tol time.Duration) bool {
	d := a - b
	return d <= int64(tol) && d >= -int64(tol)
}

// match says how two records relate.
type match int

const (
	noMatch match = iota
	viaVIP        // the client dialled another address (a Service VIP without a known translation)
	exact         // the client reached the server's local address (or its known translation)
)

// matches reports whether x and y are the client's and the server's records of one
// connection interval: the same client address and port, opposite
// sides, the same kind of record, starts and ends within the tolerance, and the client's
// destination the server's local address — or, without a known translation, some other
// address, which must turn out to be a Service (checked once attributed).
func (a *Attributor) matches(x, y *held) match {
	if x.partner != nil || y.partner != nil || x.r.client() == y.r.client() {
		return noMatch
	}
	rx, ry := &x.r, &y.r
	if rx.interim() != ry.interim() || !within(rx.start, ry.start, a.cfg.JoinTolerance) || !within(rx.end, ry.end, a.cfg.JoinTolerance) ||
		!sameClient(rx, ry, &a.nats) {
		return noMatch
	}
	c, s := x, y
	if !c.r.client() {
		c, s = y, x
	}
	if reaches(&c.r, &s.r, &a.nats) {
		return exact
	}
	if !c.r.translated() {
		return viaVIP
	}
	return noMatch
}

// fillLocal renders the local end of h, as its socket names it, into *e (ps names its node; ts
// keeps its addresses when they are not inline).
func (h *held) fillLocal(v ownership.View, e *flow.Endpoint, ps *peers, ts *translations) {
	r := &h.r
	switch {
	case h.is(stLocalNoOwner):
		*e = flow.Endpoint{Addr: r.localAddr(ts), Port: r.lport, Kind: flow.EndpointUnattributed, Reason: flow.ReasonNoOwner, Node: ps.node(r.pair), Zone: v.Zone(ps.node(r.pair))}
		if r.pod() {
			e.PodUID = r.name
		}
	case h.is(stLocalHost):
		o, _ := r.hostOwner(ps.node(r.pair))
		*e = v.OwnerEndpoint(o, r.localAddr(ts), r.lport)
	default:
		v.FillEndpoint(e, h.local, r.localAddr(ts), r.lport)
	}
}

// localDisagrees reports whether the other side's attribution of h's local end (seen) names
// another identity than h's socket does. An unattributed side, or a Service seen where the
// other side names its backend, is no disagreement. (ps names h's node.)
func (h *held) localDisagrees(v ownership.View, seen answer, ps *peers) bool {
	if h.is(stLocalNoOwner) || !seen.attributed() || seen.service() {
		return false
	}
	if h.is(stLocalHost) {
		o, _ := h.r.hostOwner(ps.node(h.r.pair))
		return !ownership.SameIdentity(o, v.Owner(seen.Ref))
	}
	return !v.Same(h.local, seen.Ref)
}

// vipEndpoint returns a connection's VIP endpoint, answer x for addr:port: a Service's is the
// store's shared one (read-only); another's is rendered into storage of its own.
func (a *Attributor) vipEndpoint(v ownership.View, x answer, addr netip.Addr, port uint16) *flow.Endpoint {
	if x.attributed() && x.service() {
		if e := v.ServiceEndpoint(x.Ref, addr, port); e != nil {
			return e
		}
	}
	e := a.newVIP()
	x.fill(v, e, addr, port)
	return e
}

// newVIP returns storage for a Conn's VIP endpoint: in chunks, so connections share
// allocations.
func (a *Attributor) newVIP() *flow.Endpoint {
	if len(a.vips) == cap(a.vips) {
		a.vips = make([]flow.Endpoint, 0, 64)
	}
	a.vips = append(a.vips, flow.Endpoint{})
	return &a.vips[len(a.vips)-1]
}

// connKey renders in's connection key into the current chunk of key bytes: connections
// share allocations (a chunk is never written again once its strings are handed out).
func (a *Attributor) connKey(r *kept) string {
	exporter := a.peers.exporter(r.pair)
	if n := len(exporter) + 1 + decimalRoom; cap(a.keys)-len(a.keys) < n {
		a.keys = make([]byte, 0, max(16<<10, n))
	}
	start := len(a.keys)
	a.keys = r.appendConnKey(a.keys, exporter)
	return unsafe.String(&a.keys[start], len(a.keys)-start)
}

// newConn appends a connection with what it takes from record h and returns it: its counters
// (the bytes each way as h's side saw them) and its end, record last's (h's own, or its
// partner's when that one ended later: rendered once). The
// slot is not cleared first (its storage holds earlier flushes' connections; clearing 664
// bytes cost ≈ 4 ns a record): newConn writes the fields an emitter may leave, and every
// emitter writes all the others (TestConnWritesEveryField).
func (a *Attributor) newConn(h *held, last *kept) *flow.Conn {
	if n := len(a.out); n < cap(a.out) {
		a.out = a.out[:n+1]
	} else {
		a.out = append(a.out, flow.Conn{})
	}
	c := &a.out[len(a.out)-1]
	r := &h.r
	c.ConnKey, c.Start, c.End, c.Interim = a.connKey(r), r.startTime(&a.locs), last.endTime(&a.locs), r.interim()
	c.VIP, c.ClientSrttUs, c.ServerSrttUs, c.JoinDisagreement = nil, 0, 0, false
	sent, received, retrans, bytesRetrans := r.counters(&a.nats)
	c.BytesClientToServer, c.BytesServerToClient = sent, received
	if !r.client() {
		c.BytesClientToServer, c.BytesServerToClient = received, sent
	}
	c.Retransmits, c.BytesRetransmitted = retrans, bytesRetrans
	resetsSent, rsts := r.resets(&a.nats)
	c.Resets, c.Outcome = resetsSent+rsts, r.outcome()
	return c
}

// emitSingle writes h as a connection observed from its side only.
func (a *Attributor) emitSingle(v ownership.View, h *held) {
	c := a.newConn(h, &h.r)
	r := &h.r
	observed := observedServer
	if r.client() {
		c.Observed, observed = string(flow.Client), observedClient
		h.fillLocal(v, &c.Client, &a.peers, &a.nats)
		sa, sp := r.serverAddr(&a.nats)
		h.remote.fill(v, &c.Server, sa, sp)
		if r.translated() {
			c.VIP = a.vipEndpoint(v, a.nats.at(h.r.nat).vip, r.remoteAddr(&a.nats), r.rport)
		}
		c.ClientSrttUs = r.srtt
	} else {
		c.Observed = string(flow.Server)
		h.fillLocal(v, &c.Server, &a.peers, &a.nats)
		h.remote.fill(v, &c.Client, r.remoteAddr(&a.nats), r.rport)
		c.ServerSrttUs = r.srtt
	}
	a.count(c, observed)
	a.finish(h)
}

// emitJoined writes both sides as one connection, cross-checking their attributions: each
// side names its own end from its socket; the other side's lookup of that address must agree.
func (a *Attributor) emitJoined(v ownership.View, x, y *held) {
	cl, sv := x, y
	if !cl.r.client() {
		cl, sv = y, x
	}
	rc, rs := &cl.r, &sv.r
	last := rc
	if rs.end >= rc.end { // the later end (the server's when equal)
		last = rs
	}
	c := a.newConn(cl, last)
	c.Observed = "both"
	if cl.is(stLocalNoOwner) && sv.remote.attributed() {
		sv.remote.fill(v, &c.Client, rc.localAddr(&a.nats), rc.lport)
	} else {
		cl.fillLocal(v, &c.Client, &a.peers, &a.nats)
	}
	if sv.is(stLocalNoOwner) && cl.remote.attributed() {
		cl.remote.fill(v, &c.Server, rs.localAddr(&a.nats), rs.lport)
	} else {
		sv.fillLocal(v, &c.Server, &a.peers, &a.nats)
	}
	switch {
	case cl.is(stViaVIP): // the client dialled the Service without a known translation
		c.VIP = a.vipEndpoint(v, cl.remote, rc.remoteAddr(&a.nats), rc.rport)
	case rc.translated():
		c.VIP = a.vipEndpoint(v, a.nats.at(cl.r.nat).vip, rc.remoteAddr(&a.nats), rc.rport)
	}
	var segs, bytes uint64 // (the client's bytes sent, newConn's, stay)
	c.BytesServerToClient, _, segs, bytes = rs.counters(&a.nats)
	c.ClientSrttUs, c.ServerSrttUs = rc.srtt, rs.srtt
	c.Retransmits += segs
	c.BytesRetransmitted += bytes
	sentByClient, _ := rc.resets(&a.nats)
	sentByServer, _ := rs.resets(&a.nats)
	c.Resets = sentByClient + sentByServer
	if cl.localDisagrees(v, sv.remote, &a.peers) || sv.localDisagrees(v, cl.remote, &a.peers) {
		c.JoinDisagreement = true
		a.m.disagreements.Inc()
		a.log.Debug("join disagreement", "conn", c.ConnKey, "client", c.Client.Name(), "server", c.Server.Name(),
			"server_saw_client", sv.remote.kind(v), "client_saw_server", cl.remote.kind(v))
	}
	a.m.pending.joined++
	a.count(c, observedBoth)
	a.finish(cl)
	a.finish(sv)
}

func (a *Attributor) count(c *flow.Conn, observed int) {
	a.m.conn(observed, c.Client.Reason, c.Server.Reason)
}
