package flowtable

import (
	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
	"golang.org/x/sys/unix"
)

// counters are a socket's cumulative counters with payload corrections applied. Segment and
// retransmit counts are 32-bit in the kernel too.
type counters struct {
	sent, recv, bytesRetrans uint64
	segsOut, segsIn, retrans uint32
}

func (c counters) minus(o counters) counters {
	return counters{
		sent: sub(c.sent, o.sent), recv: sub(c.recv, o.recv), bytesRetrans: sub(c.bytesRetrans, o.bytesRetrans),
		segsOut: c.segsOut - o.segsOut, segsIn: c.segsIn - o.segsIn, retrans: c.retrans - o.retrans, // wrap like the kernel's
	}
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// finSent reports whether a socket in state s (or leaving it for CLOSE) has sent its FIN.
func finSent(s uint8) bool {
	switch s {
	case tracer.StateFinWait1, tracer.StateFinWait2, tracer.StateClosing, tracer.StateLastAck:
		return true
	}
	return false
}

// payloadCounters turns the kernel's sequence-space counters into payload bytes. bytes_acked
// counts the active opener's SYN and, once acknowledged, our FIN; bytes_received counts the
// peer's FIN. Retransmitted bytes are in neither (both count sequence space once).
func payloadCounters(e *tracer.Event, active bool) counters {
	sent := e.BytesAcked
	if active && sent > 0 {
		sent-- // our SYN, acknowledged by the SYN-ACK
	}
	if finSent(e.State) && e.Flags&tracer.FlagFinAcked != 0 && sent > 0 {
		sent-- // our FIN, acknowledged
	}
	recv := e.BytesReceived
	if e.Flags&tracer.FlagFinRcvd != 0 && recv > 0 {
		recv-- // the peer's FIN
	}
	return counters{sent: sent, recv: recv, segsOut: e.SegsOut, segsIn: e.SegsIn,
		retrans: e.TotalRetrans, bytesRetrans: e.BytesRetrans}
}

// outcome classifies how a connection ended from the state it left for CLOSE, the socket
// error and the resets seen.
func outcome(state uint8, skErr uint16, resetsRecv uint32) flow.Outcome {
	errno := unix.Errno(skErr)
	switch state {
	case tracer.StateSynSent:
		if errno == unix.ECONNREFUSED || resetsRecv > 0 {
			return flow.Refused
		}
		return flow.Timeout // no answer (kernel timeout, or the caller gave up)
	case tracer.StateSynRecv:
		if errno == unix.ECONNRESET || resetsRecv > 0 {
			return flow.Reset
		}
		return flow.Timeout
	}
	switch {
	case errno == unix.ECONNRESET || errno == unix.EPIPE || errno == unix.ECONNREFUSED || resetsRecv > 0:
		return flow.Reset
	case errno == unix.ETIMEDOUT || errno == unix.EHOSTUNREACH || errno == unix.ENETUNREACH:
		return flow.Timeout
	case errno == unix.ECONNABORTED:
		return flow.Aborted
	}
	switch state {
	case tracer.StateFinWait2, tracer.StateClosing, tracer.StateLastAck, tracer.StateTimeWait:
		return flow.OK
	}
	// ESTABLISHED, CLOSE_WAIT or FIN_WAIT1 straight to CLOSE without an error: this side
	// aborted (SO_LINGER 0, close with unread data, or a socket kill).
	return flow.Aborted
}

// abortSendsReset reports whether the kernel sends a RST when a socket in state s is aborted
// (tcp_need_reset).
func abortSendsReset(s uint8) bool {
	switch s {
	case tracer.StateEstablished, tracer.StateCloseWait, tracer.StateFinWait1, tracer.StateFinWait2, tracer.StateSynRecv:
		return true
	}
	return false
}

// fill sets the address, identity and counter fields of r from e and c.
func fill(r *flow.Record, e *tracer.Event, c counters) {
	local, remote := e.Addrs()
	r.Family = flow.IPv6
	if local.Is4() {
		r.Family = flow.IPv4
	}
	r.LocalAddr, r.LocalPort = local, e.Sport
	r.RemoteAddr, r.RemotePort = remote, e.Dport
	r.Netns = e.Netns
	r.CgroupID = e.CgroupID
	r.BytesSent, r.BytesReceived = c.sent, c.recv
	r.SegsSent, r.SegsReceived = uint64(c.segsOut), uint64(c.segsIn)
	r.Retransmits, r.BytesRetransmitted = uint64(c.retrans), c.bytesRetrans
	r.SrttUs, r.MinRttUs = e.SrttUs, e.MinRttUs
	if r.MinRttUs == ^uint32(0) {
		r.MinRttUs = 0 // no RTT sample yet
	}
}
