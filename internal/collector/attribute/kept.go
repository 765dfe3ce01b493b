package attribute

import (
	"math"
	"net/netip"
	"time"
	"unsafe"

	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
)

// kept is what the holding window keeps of a record: the fields attribution, the join and the
// output read, the local workload reduced to what names it, times as Unix nanoseconds,
// IPv4 addresses in four bytes each and byte and retransmission counters in 32 bits (other
// addresses, and counters that do not fit, are out of line), the outcome and the times'
// locations as codes, the exporter and its node as an interned pair (peers) (88 bytes where
// the Input takes 470; see compact.go).
type kept struct {
	name   string // the local pod's UID (pod and unknown workloads), or the host workload's name (hostOwner)
	connID uint64

	start, end            int64  // Unix nanoseconds
	sent, received        uint32 // the counters when they fit 32 bits; else sent names them out of line (bigCounts, translations.counts)
	retrans, bytesRetrans uint32
	local, remote         uint32 // the addresses when both are IPv4 (v4word); else local names them out of line (translations.addrs)
	srtt                  uint32
	resetsSent, rsts      uint16 // rsts: resets received (when both fit 16 bits: else out of line with the counters)
	pair                  uint32 // the exporter and its node (Attributor.peers)
	nat                   uint32 // a translated record's translation (translations; 0: none)
	lport, rport          uint16
	startLoc, endLoc      uint8 // the times' locations (Attributor.locs)
	meta                  meta  // the outcome, the addresses' forms, whether the local end is the client

	host hostInfo // a local end that is not a pod (or that it is one), and two of the record's flags
}

// The held record is 128 bytes, two cache lines: kept (88 bytes) and heldState (40).
var _ [128 - unsafe.Sizeof(held{})]byte

// hostInfo is a host workload's kind (hostKind, in the low bits) and whether the local end is
// the node itself (hostIsNode) and hostOwner names it (hostNamed), or is a pod (isPod); two
// bits of the record ride along (hostNet, isInterim).
type hostInfo uint8

const (
	hostKindBits hostInfo = 7
	hostIsNode   hostInfo = 1 << 3 // the local workload is the node itself (kind hostNone)
	hostNamed    hostInfo = 1 << 4 // hostOwner names the local end
	hostNet      hostInfo = 1 << 5 // the socket is in the node's network namespace (host network)
	isInterim    hostInfo = 1 << 6 // an interim record
	isPod        hostInfo = 1 << 7 // the local workload is a pod (hostWorkload names none)
)

// pod reports whether the local workload is a pod.
func (r *kept) pod() bool { return r.host&isPod != 0 }

// client reports whether the local end opened the connection (isClient).
func (r *kept) client() bool { return r.meta&localClient != 0 }

// hostKind is the host workload's kind: when hostOK, container, systemd, cgroup or process.
func (r *kept) hostKind() hostKind { return hostKind(r.host & hostKindBits) }

// hostNetwork reports whether the socket is in the node's network namespace.
func (r *kept) hostNetwork() bool { return r.host&hostNet != 0 }

// interim reports whether the record is an interim one (the connection is still open).
func (r *kept) interim() bool { return r.host&isInterim != 0 }

// hostNode reports whether the local workload is the node itself.
func (r *kept) hostNode() bool { return r.host&hostIsNode != 0 }

// hostOK reports whether hostOwner names the local end.
func (r *kept) hostOK() bool { return r.host&hostNamed != 0 }

// hostKind is a host workload's kind, as hostWorkload names it.
type hostKind uint8

const (
	hostNone hostKind = iota // the node itself, or no host workload
	hostContainer
	hostSystemd
	hostCgroup
	hostProcess
)

var hostKinds = [...]string{hostNone: "", hostContainer: "container", hostSystemd: "systemd", hostCgroup: "cgroup", hostProcess: "process"}

// set makes x what the holding window keeps of a record, in place, field by field: every
// field is written once, straight into the held record (a composite literal is built on the
// stack and copied; TestSetWritesEveryField). pair is the record's (exporter, node) pair (peers),
// node its node; processNames is Config.ProcessNames; locs interns the times' locations; ts
// keeps what does not fit inline (translations.dropRecord gives it back). r has passed validate.
func (x *kept) set(pair uint32, node string, r *flow.Record, processNames bool, locs *locations, ts *translations) {
	w := &r.Workload
	x.pair, x.name, x.connID = pair, w.PodUID, r.ConnID
	m, _ := outcomeCode(r.Outcome)
	l4, r4 := r.LocalAddr.Is4(), r.RemoteAddr.Is4()
	if l4 {
		m |= local4
	}
	if r4 {
		m |= remote4
	}
	if l4 && r4 { // (nearly all)
		x.local, x.remote = v4word(r.LocalAddr), v4word(r.RemoteAddr)
	} else {
		x.local, x.remote = ts.holdAddrs(r), 0
	}
	if max(r.BytesSent, r.BytesReceived, r.Retransmits, r.BytesRetransmitted) <= math.MaxUint32 &&
		max(r.ResetsSent, r.ResetsReceived) <= math.MaxUint16 { // (nearly all)
		x.sent, x.received = uint32(r.BytesSent), uint32(r.BytesReceived)
		x.retrans, x.bytesRetrans = uint32(r.Retransmits), uint32(r.BytesRetransmitted)
		x.resetsSent, x.rsts = uint16(r.ResetsSent), uint16(r.ResetsReceived)
	} else {
		m |= bigCounts
		x.sent, x.received, x.retrans, x.bytesRetrans = ts.holdCounts(r), 0, 0, 0
		x.resetsSent, x.rsts = 0, 0
	}
	x.nat = 0
	if r.NatRemoteAddr.IsValid() { // (the address and port, out of line)
		m |= natSet
		x.nat = ts.take(r.NatRemoteAddr, r.NatRemotePort)
	}
	if isClient(r) {
		m |= localClient
	}
	x.meta = m
	x.start, x.end, x.startLoc, x.endLoc = r.Start.UnixNano(), r.End.UnixNano(), locs.code(r.Start.Location()), locs.code(r.End.Location())
	x.srtt = r.SrttUs
	x.lport, x.rport = r.LocalPort, r.RemotePort
	x.host = hostInfo(hostNone)
	if w.Kind == flow.KindPod {
		x.host |= isPod
	}
	if r.Interim {
		x.host |= isInterim
	}
	if r.HostNetwork {
		x.host |= hostNet
	}
	if x.host&isPod != 0 {
		return // hostWorkload names no pod
	}
	kind, name, isNode, isHost := hostWorkload(w, processNames)
	if isHost && !isNode {
		x.name, x.host = name, x.host|hostInfo(kind)
	}
	if isNode {
		x.host |= hostIsNode
	}
	if isHost && (!isNode || node != "") {
		x.host |= hostNamed
	}
}

// addrsInline reports whether the record keeps its addresses itself (both are IPv4).
func (r *kept) addrsInline() bool { return r.meta&(local4|remote4) == local4|remote4 }

// counters returns the record's counters: bytes sent and received, retransmitted segments
// and bytes; resets returns the resets it sent and received.
func (r *kept) counters(ts *translations) (sent, received, retrans, bytesRetrans uint64) {
	if r.meta&bigCounts == 0 {
		return uint64(r.sent), uint64(r.received), uint64(r.retrans), uint64(r.bytesRetrans)
	}
	c := &ts.counts.list[r.sent]
	return c.sent, c.received, c.retrans, c.bytesRetrans
}

func (r *kept) resets(ts *translations) (sent, received uint32) {
	if r.meta&bigCounts == 0 {
		return uint32(r.resetsSent), uint32(r.rsts)
	}
	c := &ts.counts.list[r.sent]
	return c.resetsSent, c.rsts
}

// localAddr and remoteAddr are the record's addresses (ts keeps them when not inline; the
// translated one: serverAddr).
func (r *kept) localAddr(ts *translations) netip.Addr {
	if r.addrsInline() {
		return v4addr(r.local)
	}
	return ts.addrs.list[r.local][0].addr(r.meta&local4 != 0)
}

func (r *kept) remoteAddr(ts *translations) netip.Addr {
	if r.addrsInline() {
		return v4addr(r.remote)
	}
	return ts.addrs.list[r.local][1].addr(r.meta&remote4 != 0)
}

// localKey and remoteKey are the record's addresses as keys: an IPv4 address and its
// IPv4-mapped IPv6 form are one key.
func (r *kept) localKey(ts *translations) addrKey {
	if r.addrsInline() {
		return v4key(r.local)
	}
	return ts.addrs.list[r.local][0]
}

func (r *kept) remoteKey(ts *translations) addrKey {
	if r.addrsInline() {
		return v4key(r.remote)
	}
	return ts.addrs.list[r.local][1]
}

// translated reports whether the record carries its destination's translation.
func (r *kept) translated() bool { return r.meta&natSet != 0 }

// outcome is how the connection ended.
func (r *kept) outcome() flow.Outcome { return outcomes[r.meta&outcomeBits] }

// startTime and endTime render the record's times as the record had them (without a
// monotonic clock reading).
func (r *kept) startTime(locs *locations) time.Time {
	return time.Unix(0, r.start).In(locs.at(r.startLoc))
}
func (r *kept) endTime(locs *locations) time.Time { return time.Unix(0, r.end).In(locs.at(r.endLoc)) }

// hostOwner names a local end that is not a pod: a host workload on the exporter's node, or
// the node itself. Pods are named by their UID (the store resolves it).
func (r *kept) hostOwner(node string) (ownership.Owner, bool) {
	if !r.hostNode() && !r.hostOK() {
		return ownership.Owner{}, false
	}
	return hostOwner(node, hostKinds[r.hostKind()], r.name, r.hostNode())
}

// serverAddr is where the connection really went: the translated backend when known (entry
// r.nat of ts).
func (r *kept) serverAddr(ts *translations) (netip.Addr, uint16) {
	switch {
	case !r.client():
		return r.localAddr(ts), r.lport
	case r.translated():
		t := &ts.list[r.nat]
		return t.addr.addr(t.is4), t.port
	}
	return r.remoteAddr(ts), r.rport
}

// peer is the address (and, for a client, port) a record's remote end is attributed by: for a
// client the server it really reached (a translation: entry r.nat of ts), for a server its
// client's address alone.
func (r *kept) peer(ts *translations) (netip.Addr, uint16) {
	if r.client() {
		return r.serverAddr(ts)
	}
	return r.remoteAddr(ts), 0
}

// clientEnd is the connection's client address (as a key: given mapped or not, one) and port.
func (r *kept) clientEnd(ts *translations) (addrKey, uint16) {
	w, port, side := r.remote, r.rport, 1
	if r.client() {
		w, port, side = r.local, r.lport, 0
	}
	if r.addrsInline() {
		return v4key(w), port
	}
	return ts.addrs.list[r.local][side], port
}

// sameClient reports whether x and y have the same client key (the same address, given
// mapped or not, the same port). Two records with inline addresses compare their IPv4 words.
func sameClient(x, y *kept, ts *translations) bool {
	if x.addrsInline() && y.addrsInline() {
		xw, xp := x.clientWord()
		yw, yp := y.clientWord()
		return xp == yp && xw == yw
	}
	xa, xp := x.clientEnd(ts)
	ya, yp := y.clientEnd(ts)
	return xp == yp && xa == ya
}

// clientWord is the client address (v4word) and port of a record whose addresses are inline.
func (r *kept) clientWord() (uint32, uint16) {
	if r.client() {
		return r.local, r.lport
	}
	return r.remote, r.rport
}

// reaches reports whether client record c's destination (its translation, entry c.nat of ts,
// when it carries one; else the address it dialled) is s's local end. Two records with inline
// addresses compare their IPv4 words.
func reaches(c, s *kept, ts *translations) bool {
	switch {
	case c.translated():
		t := &ts.list[c.nat]
		return t.port == s.lport && t.addr == s.localKey(ts)
	case c.addrsInline() && s.addrsInline():
		return c.rport == s.lport && c.remote == s.local
	}
	return c.rport == s.lport && c.remoteKey(ts) == s.localKey(ts)
}

// appendConnKey appends the record's connection key: exporter id "/" conn id.
func (r *kept) appendConnKey(b []byte, exporter string) []byte {
	b = append(b, exporter...)
	b = append(b, '/')
	return appendDecimal(b, r.connID)
}
