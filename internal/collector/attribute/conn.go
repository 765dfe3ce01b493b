package attribute

import (
	"net/netip"
	"time"

	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
)

func within(a, b time.Time, tol time.Duration) bool {
	d := a.Sub(b)
	return d <= tol && d >= -tol
}

// match says how two records relate.
type match int

const (
	noMatch match = iota
	viaVIP        // the client dialled another address (a Service VIP without a known translation)
	exact         // the client reached the server's local address (or its known translation)
)

// matches reports whether x and y are the client's and the server's records of one
// connection interval: the same client address and port (the index guarantees it), opposite
// sides, the same kind of record, starts and ends within the tolerance, and the client's
// destination the server's local address — or, without a known translation, some other
// address, which must turn out to be a Service (checked once attributed).
func (a *Attributor) matches(x, y *held) match {
	if x.partner != nil || y.partner != nil || x.done || y.done || x.in.isClient() == y.in.isClient() {
		return noMatch
	}
	rx, ry := &x.in.Record, &y.in.Record
	if rx.Interim != ry.Interim || !within(rx.Start, ry.Start, a.cfg.JoinTolerance) || !within(rx.End, ry.End, a.cfg.JoinTolerance) {
		return noMatch
	}
	c, s := x, y
	if !c.in.isClient() {
		c, s = y, x
	}
	addr, port := c.in.serverAddr()
	if addr.Unmap() == s.in.Record.LocalAddr.Unmap() && port == s.in.Record.LocalPort {
		return exact
	}
	if !c.in.TranslatedAddr.IsValid() {
		return viaVIP
	}
	return noMatch
}

func resultEndpoint(r ownership.Result, addr flowAddr) flow.Endpoint {
	if r.Attributed() {
		return r.Owner.Endpoint(addr.addr, addr.port)
	}
	return flow.Endpoint{Addr: addr.addr, Port: addr.port, Kind: flow.EndpointUnattributed, Reason: r.Reason}
}

func (h *held) localEndpoint() flow.Endpoint {
	r := &h.in.Record
	if h.localReason != "" {
		return flow.Endpoint{Addr: r.LocalAddr, Port: r.LocalPort, Kind: flow.EndpointUnattributed, Reason: h.localReason, PodUID: h.local.PodUID, Node: h.in.Node, Zone: h.local.Zone}
	}
	return h.local.Endpoint(r.LocalAddr, r.LocalPort)
}

func (h *held) localResult() ownership.Result {
	if h.localReason != "" {
		return ownership.Result{Reason: h.localReason}
	}
	return ownership.Result{Owner: h.local}
}

type flowAddr struct {
	addr netip.Addr
	port uint16
}

// single renders h as a connection observed from its side only.
func (a *Attributor) single(h *held) flow.Conn {
	r := &h.in.Record
	c := flow.Conn{
		ConnKey: h.in.connKey(), Start: r.Start, End: r.End, Interim: r.Interim,
		Retransmits: r.Retransmits, BytesRetransmitted: r.BytesRetransmitted,
		Resets: r.ResetsSent + r.ResetsReceived, Outcome: r.Outcome,
	}
	if h.in.isClient() {
		c.Observed = string(flow.Client)
		c.Client = h.localEndpoint()
		sa, sp := h.in.serverAddr()
		c.Server = resultEndpoint(h.remote, flowAddr{sa, sp})
		if h.in.TranslatedAddr.IsValid() {
			vip := resultEndpoint(*h.vip, flowAddr{r.RemoteAddr, r.RemotePort})
			c.VIP = &vip
		}
		c.BytesClientToServer, c.BytesServerToClient = r.BytesSent, r.BytesReceived
		c.ClientSrttUs = r.SrttUs
	} else {
		c.Observed = string(flow.Server)
		c.Server = h.localEndpoint()
		c.Client = resultEndpoint(h.remote, flowAddr{r.RemoteAddr, r.RemotePort})
		c.BytesClientToServer, c.BytesServerToClient = r.BytesReceived, r.BytesSent
		c.ServerSrttUs = r.SrttUs
	}
	return c
}

func (a *Attributor) emitSingle(h *held) {
	c := a.single(h)
	a.count(&c)
	a.out = append(a.out, c)
	a.finish(h)
}

// emitJoined renders both sides as one connection, cross-checking their attributions: each
// side names its own end from its socket; the other side's lookup of that address must agree.
func (a *Attributor) emitJoined(x, y *held) {
	cl, sv := x, y
	if !cl.in.isClient() {
		cl, sv = y, x
	}
	rc, rs := &cl.in.Record, &sv.in.Record
	c := a.single(cl)
	c.Observed = "both"
	if cl.viaVIP {
		vip := c.Server
		c.VIP = &vip
	}
	c.End = maxTime(rc.End, rs.End)
	c.Server = sv.localEndpoint()
	if sv.localReason != "" && cl.remote.Attributed() {
		c.Server = resultEndpoint(cl.remote, flowAddr{rs.LocalAddr, rs.LocalPort})
	}
	if cl.localReason != "" && sv.remote.Attributed() {
		c.Client = resultEndpoint(sv.remote, flowAddr{rc.LocalAddr, rc.LocalPort})
	}
	c.BytesServerToClient = rs.BytesSent
	c.ServerSrttUs = rs.SrttUs
	c.Retransmits += rs.Retransmits
	c.BytesRetransmitted += rs.BytesRetransmitted
	c.Resets = rc.ResetsSent + rs.ResetsSent
	if disagree(cl.localResult(), sv.remote) || disagree(sv.localResult(), cl.remote) {
		c.JoinDisagreement = true
		a.m.disagreements.Inc()
		a.log.Debug("join disagreement", "conn", c.ConnKey, "client", c.Client.Name(), "server", c.Server.Name(),
			"server_saw_client", sv.remote.Owner.Kind, "client_saw_server", cl.remote.Owner.Kind)
	}
	a.m.joined.Inc()
	a.count(&c)
	a.out = append(a.out, c)
	a.finish(cl)
	a.finish(sv)
}

// disagree reports whether two attributions of one end name different identities. An
// unattributed side, or a Service seen where the other side names its backend, is no
// disagreement.
func disagree(self, seen ownership.Result) bool {
	if !self.Attributed() || !seen.Attributed() || seen.Owner.Kind == flow.EndpointService {
		return false
	}
	return !ownership.SameIdentity(self.Owner, seen.Owner)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (a *Attributor) count(c *flow.Conn) {
	a.m.conn(c.Observed, string(c.Client.Reason), string(c.Server.Reason))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
