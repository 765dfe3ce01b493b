package attribute

import (
	"net/netip"
	"slices"
	"time"

	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
)

// kept is what the holding window keeps of a record: the fields attribution, the join and the
// output read, the local workload reduced to what names it, times as Unix nanoseconds (≈ 230
// bytes where the Input takes 470; a window of a million records reads and writes that much
// less).
type kept struct {
	exporter, node string
	name           string       // the local pod's UID (pod and unknown workloads), or the host workload's name (hostOwner)
	outcome        flow.Outcome // how the connection ended
	connID         uint64

	local, remote, nat     netip.Addr
	start, end             int64          // Unix nanoseconds
	startLoc, endLoc       *time.Location // their locations, for the output
	sent, received         uint64
	retrans, bytesRetrans  uint64
	srtt, resetsSent, rsts uint32 // rsts: resets received
	lport, rport, natPort  uint16

	host                         hostInfo // a local end that is not a pod (one byte: a held record fits five cache lines)
	client, interim, hostNetwork bool
	pod                          bool // the local workload is a pod
}

// hostInfo is a host workload's kind (hostKind, in the low bits) and whether the local end is
// the node itself (hostIsNode) and hostOwner names it (hostNamed).
type hostInfo uint8

const (
	hostKindBits hostInfo = 7
	hostIsNode   hostInfo = 1 << 3 // the local workload is the node itself (kind hostNone)
	hostNamed    hostInfo = 1 << 4 // hostOwner names the local end
)

// hostKind is the host workload's kind: when hostOK, container, systemd, cgroup or process.
func (r *kept) hostKind() hostKind { return hostKind(r.host & hostKindBits) }

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
// stack and copied; TestSetWritesEveryField). processNames is Config.ProcessNames.
func (x *kept) set(exporter, node string, r *flow.Record, processNames bool) {
	w := &r.Workload
	x.exporter, x.node, x.name, x.outcome, x.connID = exporter, node, w.PodUID, r.Outcome, r.ConnID
	x.local, x.remote, x.nat = r.LocalAddr, r.RemoteAddr, r.NatRemoteAddr
	x.start, x.end, x.startLoc, x.endLoc = r.Start.UnixNano(), r.End.UnixNano(), r.Start.Location(), r.End.Location()
	x.sent, x.received, x.retrans, x.bytesRetrans = r.BytesSent, r.BytesReceived, r.Retransmits, r.BytesRetransmitted
	x.srtt, x.resetsSent, x.rsts = r.SrttUs, r.ResetsSent, r.ResetsReceived
	x.lport, x.rport, x.natPort = r.LocalPort, r.RemotePort, r.NatRemotePort
	x.client, x.interim, x.hostNetwork, x.pod = isClient(r), r.Interim, r.HostNetwork, w.Kind == flow.KindPod
	x.host = hostInfo(hostNone)
	if x.pod {
		return // hostWorkload names no pod
	}
	kind, name, isNode, isHost := hostWorkload(w, processNames)
	if isHost && !isNode {
		x.name, x.host = name, hostInfo(kind)
	}
	if isNode {
		x.host |= hostIsNode
	}
	if isHost && (!isNode || node != "") {
		x.host |= hostNamed
	}
}

// startTime and endTime render the record's times as the record had them (without a
// monotonic clock reading).
func (r *kept) startTime() time.Time { return time.Unix(0, r.start).In(r.startLoc) }
func (r *kept) endTime() time.Time   { return time.Unix(0, r.end).In(r.endLoc) }

// hostOwner names a local end that is not a pod: a host workload on the exporter's node, or
// the node itself. Pods are named by their UID (the store resolves it).
func (r *kept) hostOwner() (ownership.Owner, bool) {
	if !r.hostNode() && !r.hostOK() {
		return ownership.Owner{}, false
	}
	return hostOwner(r.node, hostKinds[r.hostKind()], r.name, r.hostNode())
}

// serverAddr is where the connection really went: the translated backend when known.
func (r *kept) serverAddr() (netip.Addr, uint16) {
	if !r.client {
		return r.local, r.lport
	}
	if r.nat.IsValid() {
		return r.nat, r.natPort
	}
	return r.remote, r.rport
}

// peer is the address (and, for a client, port) a record's remote end is attributed by: for a
// client the server it really reached, for a server its client's address alone.
func (r *kept) peer() (netip.Addr, uint16) {
	if r.client {
		return r.serverAddr()
	}
	return r.remote, 0
}

// clientEnd is the connection's client address and port.
func (r *kept) clientEnd() (netip.Addr, uint16) {
	if r.client {
		return r.local, r.lport
	}
	return r.remote, r.rport
}

// sameClient reports whether x and y have the same client key (the same address, the same
// port), comparing the addresses as given first.
func sameClient(x, y *kept) bool {
	xa, xp := x.clientEnd()
	ya, yp := y.clientEnd()
	return xp == yp && (xa == ya || xa.Unmap().As16() == ya.Unmap().As16())
}

// appendConnKey appends the record's connection key: exporter id "/" conn id.
func (r *kept) appendConnKey(b []byte) []byte {
	b = append(b, r.exporter...)
	b = append(b, '/')
	return appendDecimal(b, r.connID)
}

// digitPairs holds "00" to "99": appendDecimal writes two digits per step.
const digitPairs = "00010203040506070809" + "10111213141516171819" + "20212223242526272829" +
	"30313233343536373839" + "40414243444546474849" + "50515253545556575859" +
	"60616263646566676869" + "70717273747576777879" + "80818283848586878889" + "90919293949596979899"

// appendDecimal appends v in decimal, as strconv.AppendUint(b, v, 10) does, writing in place
// (no intermediate buffer and copy).
func appendDecimal(b []byte, v uint64) []byte {
	n := decimalLen(v)
	b = slices.Grow(b, n)
	d := b[len(b) : len(b)+n]
	i := n
	for v >= 100 {
		q := v / 100
		j := (v - q*100) * 2
		i -= 2
		d[i], d[i+1] = digitPairs[j], digitPairs[j+1]
		v = q
	}
	if v >= 10 {
		d[i-2], d[i-1] = digitPairs[v*2], digitPairs[v*2+1]
	} else {
		d[i-1] = byte('0' + v)
	}
	return b[:len(b)+n]
}

// decimalLen is the number of decimal digits of v (1 for 0).
func decimalLen(v uint64) int {
	n := 1
	for ; v >= 10000; v /= 10000 {
		n += 4
	}
	switch {
	case v >= 1000:
		return n + 3
	case v >= 100:
		return n + 2
	case v >= 10:
		return n + 1
	}
	return n
}
