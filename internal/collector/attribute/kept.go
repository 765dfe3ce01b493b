package attribute

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
)

// kept is what the holding window keeps of a record: the fields attribution, the join and the
// output read, the local workload reduced to what names it (≈ 270 bytes where the Input takes
// 470; a window of a million records reads and writes that much less).
type kept struct {
	exporter, node string
	uid            string       // the local pod's UID (pod and unknown workloads)
	hostName       string       // the local host workload's name (hostOwner), when hostKind is set
	hostKind       string       // container, systemd, cgroup or process; "" for the node itself or none
	outcome        flow.Outcome // how the connection ended
	connID         uint64

	local, remote, nat     netip.Addr
	start, end             time.Time
	sent, received         uint64
	retrans, bytesRetrans  uint64
	srtt, resetsSent, rsts uint32 // rsts: resets received
	lport, rport, natPort  uint16

	client, interim, hostNetwork bool
	pod                          bool // the local workload is a pod
	hostNode                     bool // the local workload is the node itself (hostKind "")
	hostOK                       bool // hostOwner names the local end
}

// set makes x what the holding window keeps of a record, in place (x is a held record's:
// building it elsewhere and copying it in would write it twice). processNames is
// Config.ProcessNames.
func (x *kept) set(exporter, node string, r *flow.Record, processNames bool) {
	w := &r.Workload
	*x = kept{exporter: exporter, node: node, uid: w.PodUID, outcome: r.Outcome, connID: r.ConnID,
		local: r.LocalAddr, remote: r.RemoteAddr, nat: r.NatRemoteAddr, start: r.Start, end: r.End,
		sent: r.BytesSent, received: r.BytesReceived, retrans: r.Retransmits, bytesRetrans: r.BytesRetransmitted,
		srtt: r.SrttUs, resetsSent: r.ResetsSent, rsts: r.ResetsReceived, lport: r.LocalPort, rport: r.RemotePort, natPort: r.NatRemotePort,
		client: isClient(r), interim: r.Interim, hostNetwork: r.HostNetwork, pod: w.Kind == flow.KindPod}
	var isHost bool
	x.hostKind, x.hostName, x.hostNode, isHost = hostWorkload(w, processNames)
	x.hostOK = isHost && (!x.hostNode || node != "")
}

// hostOwner names a local end that is not a pod: a host workload on the exporter's node, or
// the node itself. Pods are named by their UID (the store resolves it).
func (r *kept) hostOwner() (ownership.Owner, bool) {
	if !r.hostNode && !r.hostOK {
		return ownership.Owner{}, false
	}
	return hostOwner(r.node, r.hostKind, r.hostName, r.hostNode)
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

func (r *kept) clientKey() clientKey {
	if r.client {
		return clientKey{r.local.Unmap().As16(), r.lport}
	}
	return clientKey{r.remote.Unmap().As16(), r.rport}
}

// appendConnKey appends the record's connection key: exporter id "/" conn id.
func (r *kept) appendConnKey(b []byte) []byte {
	b = append(b, r.exporter...)
	b = append(b, '/')
	return strconv.AppendUint(b, r.connID, 10)
}
