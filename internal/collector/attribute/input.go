// Package attribute turns exporter records into attributed connections: each record waits in a
// bounded holding window until the ownership store can name its remote end at the flow's start
// (or until the window ends: then it is unattributed, with a reason), the client's and the
// server's records of one connection are joined and cross-checked, and the result goes to a Sink.
package attribute

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
)

// Input is one exporter record as the collector ingest hands it over. The record says
// whether its socket is in the node's network namespace (HostNetwork: its local address is
// the node's, so the local workload is attributed by address and port, never by address
// alone) and, for a client socket whose destination was translated (a Service VIP, by
// conntrack), the backend it really reached (NatRemoteAddr/Port).
type Input struct {
	Exporter string // exporter id (unique per exporter process)
	Node     string // the exporter's node name
	Record   flow.Record
}

// Sink receives attributed connections. Write is called from one goroutine at a time (a
// flush may call it several times, with consecutive parts of its connections). The
// batch is the Attributor's: the Sink must not retain the slice (nor pointers into it) after
// Write returns — the next write reuses it — and copies the connections it keeps (append to
// its own slice: a flow.Conn value stays valid, its strings and VIP endpoint are never
// reused). VIP endpoints and Endpoint.Labels maps are shared and read-only. An error is
// counted and the batch is offered again on the next flush.
type Sink interface {
	Write(ctx context.Context, conns []flow.Conn) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, conns []flow.Conn) error

// Write calls f.
func (f SinkFunc) Write(ctx context.Context, conns []flow.Conn) error { return f(ctx, conns) }

func validate(exporter string, r *flow.Record) error {
	switch {
	case exporter == "":
		return fmt.Errorf("record %d without an exporter id", r.ConnID)
	case !r.LocalAddr.IsValid() || !r.RemoteAddr.IsValid():
		return fmt.Errorf("record %d without addresses", r.ConnID)
	case r.Start.IsZero() || r.End.Before(r.Start):
		return fmt.Errorf("record %d has a bad time range [%s, %s]", r.ConnID, r.Start, r.End)
	case r.Direction != flow.Client && r.Direction != flow.Server && r.Direction != flow.DirectionUnknown:
		return fmt.Errorf("record %d has an unknown direction %q", r.ConnID, r.Direction)
	case zoned(r.LocalAddr) || zoned(r.RemoteAddr) || zoned(r.NatRemoteAddr):
		return fmt.Errorf("record %d has a zoned address (%s, %s, %s)", r.ConnID, r.LocalAddr, r.RemoteAddr, r.NatRemoteAddr)
	}
	if _, ok := outcomeCode(r.Outcome); !ok {
		return fmt.Errorf("record %d has an unknown outcome %q", r.ConnID, r.Outcome)
	}
	return nil
}

// isClient reports whether the local end opened the connection. Sockets found already open
// whose role is unknown are taken as clients when the remote port is the lower (a listener).
func isClient(r *flow.Record) bool {
	switch r.Direction {
	case flow.Client:
		return true
	case flow.Server:
		return false
	}
	return r.RemotePort < r.LocalPort
}

// hostOwnerOf names a local workload that is not a pod, as hostWorkload does (without
// process names).
func hostOwnerOf(node string, w *flow.Workload) (ownership.Owner, bool) {
	kind, name, isNode, ok := hostWorkload(w, false)
	if !ok {
		return ownership.Owner{}, false
	}
	return hostOwner(node, hostKinds[kind], name, isNode)
}

// hostWorkload names a local workload that is not a pod: a host workload's kind and name, or
// the node itself (isNode, kind hostNone). processNames names a host or plain cgroup socket by
// its process (Config.ProcessNames).
func hostWorkload(w *flow.Workload, processNames bool) (kind hostKind, name string, isNode, ok bool) {
	switch {
	case processNames && (w.Kind == flow.KindHost || w.Kind == flow.KindCgroup) && w.Comm != "":
		return hostProcess, w.Comm, false, true
	case w.Kind == flow.KindContainer:
		return hostContainer, w.ContainerID, false, true
	case w.Kind == flow.KindUnit:
		return hostSystemd, w.Unit, false, true
	case w.Kind == flow.KindCgroup:
		return hostCgroup, w.CgroupPath, false, true
	case w.Kind == flow.KindHost:
		return hostNone, "", true, true
	}
	return hostNone, "", false, false
}

// hostOwner is the owner hostWorkload names on node; the node itself needs the node's name.
func hostOwner(node, kind, name string, isNode bool) (ownership.Owner, bool) {
	if isNode {
		return ownership.Owner{Kind: flow.EndpointNode, Node: node}, node != ""
	}
	return ownership.Owner{Kind: flow.EndpointHost, Node: node, Workload: name, WorkloadKind: kind}, true
}

// localClaims collects what the local ends of a batch's records prove about ownership: a pod
// held its address (or, in the host network, its listening port) over the record. Pods'
// claims take the store's compact path and bring back the pod's owner as a hint.
type localClaims struct {
	pods   []ownership.LocalPod
	podOf  []claimant // the record of each pod claim
	refs   []ownership.Ref
	others []ownership.Claim
}

// claimant is the record of a pod claim, for one generation (16 bytes where a ref takes 24).
type claimant struct {
	h   *held
	gen uint32
}

// add notes h's claim, if its local end makes one. local is the record's local address as it
// came (h.r.localAddr() gives it back from the packed form: validate admits no zone, so the
// two are equal, and the one at hand costs no unpacking); exporter and node are the record's,
// as they came (h.r.pair names them too).
func (l *localClaims) add(h *held, local netip.Addr, exporter, node string) {
	r := &h.r
	switch {
	case r.pod() && r.name != "" && !r.hostNetwork():
		// Written field by field in place: a LocalPod built on the stack and copied would be
		// read back in 16-byte loads across its smaller stores (a store-forwarding stall).
		n := len(l.pods)
		l.pods = slices.Grow(l.pods, 1)[:n+1]
		p := &l.pods[n]
		p.Addr, p.UID, p.Origin, p.From, p.To, p.ListenPort = local, r.name, exporter, r.start, r.end, 0
		if !r.client() {
			p.ListenPort = r.lport // if the address turns out to be a node's (host network)
		}
		l.podOf = append(l.podOf, claimant{h: h, gen: h.gen})
	case r.hostNetwork() && !r.client():
		o := ownership.Owner{Kind: flow.EndpointPod, PodUID: r.name}
		if !r.pod() {
			o, _ = r.hostOwner(node)
		}
		if o.Kind == flow.EndpointNode || o.Kind == "" || (o.Kind == flow.EndpointPod && o.PodUID == "") {
			return
		}
		l.others = append(l.others, ownership.Claim{Addr: local, Port: r.lport, Owner: o, From: time.Unix(0, r.start), To: time.Unix(0, r.end),
			Source: ownership.SourceFlow, Origin: exporter})
	}
}

// observe gives the claims to the store, hands each pod claim's owner to its record as its
// hint (unless the full policy decided the record, or its local end, meanwhile: the hint
// shares its field with the local pod) and resets the buffers.
func (l *localClaims) observe(store *ownership.Store) {
	if len(l.pods) > 0 {
		l.refs = slices.Grow(l.refs[:0], len(l.pods))[:len(l.pods)]
		_ = store.ObservePods(l.pods, l.refs)
		for i, r := range l.podOf {
			if r.h.gen == r.gen && !r.h.is(stLocalDone) {
				r.h.local = l.refs[i]
			}
		}
	}
	if len(l.others) > 0 {
		_ = store.Observe(l.others...)
	}
	// The pods' strings and records are not cleared: the held records hold the same strings,
	// the next batch writes over them, and trim clears what is left (forget).
	clear(l.others)
	l.pods, l.podOf, l.others = l.pods[:0], l.podOf[:0], l.others[:0]
}

// forget clears the buffers' storage, so that it keeps no record or string alive.
func (l *localClaims) forget() {
	clear(l.pods[:cap(l.pods)])
	clear(l.podOf[:cap(l.podOf)])
}

// lookupTime is the moment a record's remote end is attributed at: its start, or for a
// connection open longer than longConn its end (an established connection keeps its peer, and
// the start may be older than the ownership horizon).
func lookupTime(r *kept, longConn time.Duration) int64 {
	if r.end-r.start > int64(longConn) {
		return r.end
	}
	return r.start
}
