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
	"strconv"
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

	processNames bool // Config.ProcessNames, set by Add
}

// Sink receives attributed connections. Write is called from one goroutine at a time. The
// batch is the Attributor's: the Sink must not retain the slice (nor pointers into it) after
// Write returns — the next flush reuses it — and copies the connections it keeps (append to
// its own slice: a flow.Conn value stays valid, its strings and VIP endpoint are never
// reused). Endpoint.Labels maps are shared and read-only. An error is counted and the batch is
// offered again on the next flush.
type Sink interface {
	Write(ctx context.Context, conns []flow.Conn) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, conns []flow.Conn) error

// Write calls f.
func (f SinkFunc) Write(ctx context.Context, conns []flow.Conn) error { return f(ctx, conns) }

func validate(in *Input) error {
	r := &in.Record
	switch {
	case in.Exporter == "":
		return fmt.Errorf("record %d without an exporter id", r.ConnID)
	case !r.LocalAddr.IsValid() || !r.RemoteAddr.IsValid():
		return fmt.Errorf("record %d without addresses", r.ConnID)
	case r.Start.IsZero() || r.End.Before(r.Start):
		return fmt.Errorf("record %d has a bad time range [%s, %s]", r.ConnID, r.Start, r.End)
	case r.Direction != flow.Client && r.Direction != flow.Server && r.Direction != flow.DirectionUnknown:
		return fmt.Errorf("record %d has an unknown direction %q", r.ConnID, r.Direction)
	}
	return nil
}

// isClient reports whether the local end opened the connection. Sockets found already open
// whose role is unknown are taken as clients when the remote port is the lower (a listener).
func (in *Input) isClient() bool {
	switch in.Record.Direction {
	case flow.Client:
		return true
	case flow.Server:
		return false
	}
	return in.Record.RemotePort < in.Record.LocalPort
}

// serverAddr is where the connection really went: the translated backend when known.
func (in *Input) serverAddr() (netip.Addr, uint16) {
	if !in.isClient() {
		return in.Record.LocalAddr, in.Record.LocalPort
	}
	if in.Record.NatRemoteAddr.IsValid() {
		return in.Record.NatRemoteAddr, in.Record.NatRemotePort
	}
	return in.Record.RemoteAddr, in.Record.RemotePort
}

func (in *Input) clientKey() clientKey {
	if in.isClient() {
		return clientKey{in.Record.LocalAddr.Unmap().As16(), in.Record.LocalPort}
	}
	return clientKey{in.Record.RemoteAddr.Unmap().As16(), in.Record.RemotePort}
}

// appendConnKey appends the record's connection key: exporter id "/" conn id.
func (in *Input) appendConnKey(b []byte) []byte {
	b = append(b, in.Exporter...)
	b = append(b, '/')
	return strconv.AppendUint(b, in.Record.ConnID, 10)
}

// hostOwner names a local end that is not a pod: a host workload on the exporter's node, or
// the node itself. Pods are named by their UID (the store resolves it).
func hostOwner(in *Input) (ownership.Owner, bool) {
	if w := &in.Record.Workload; in.processNames && (w.Kind == flow.KindHost || w.Kind == flow.KindCgroup) && w.Comm != "" {
		return ownership.Owner{Kind: flow.EndpointHost, Node: in.Node, Workload: w.Comm, WorkloadKind: "process"}, true
	}
	return hostOwnerOf(in.Node, &in.Record.Workload)
}

func hostOwnerOf(node string, w *flow.Workload) (ownership.Owner, bool) {
	host := func(kind, name string) (ownership.Owner, bool) {
		return ownership.Owner{Kind: flow.EndpointHost, Node: node, Workload: name, WorkloadKind: kind}, true
	}
	switch w.Kind {
	case flow.KindContainer:
		return host("container", w.ContainerID)
	case flow.KindUnit:
		return host("systemd", w.Unit)
	case flow.KindCgroup:
		return host("cgroup", w.CgroupPath)
	case flow.KindHost:
		return ownership.Owner{Kind: flow.EndpointNode, Node: node}, node != ""
	}
	return ownership.Owner{}, false
}

// localClaims collects what the local ends of a batch's records prove about ownership: a pod
// held its address (or, in the host network, its listening port) over the record. Pods'
// claims take the store's compact path and bring back the pod's owner as a hint.
type localClaims struct {
	pods   []ownership.LocalPod
	podOf  []ref // the record of each pod claim
	refs   []ownership.Ref
	others []ownership.Claim
}

// add notes h's claim, if its local end makes one.
func (l *localClaims) add(h *held) {
	in := &h.in
	r := &in.Record
	w := &r.Workload
	switch {
	case w.Kind == flow.KindPod && w.PodUID != "" && !r.HostNetwork:
		p := ownership.LocalPod{Addr: r.LocalAddr, UID: w.PodUID, Origin: in.Exporter, From: r.Start.UnixNano(), To: r.End.UnixNano()}
		if !in.isClient() {
			p.ListenPort = r.LocalPort // if the address turns out to be a node's (host network)
		}
		l.pods = append(l.pods, p)
		l.podOf = append(l.podOf, ref{h: h, gen: h.gen})
	case r.HostNetwork && !in.isClient():
		o := ownership.Owner{Kind: flow.EndpointPod, PodUID: w.PodUID}
		if w.Kind != flow.KindPod {
			o, _ = hostOwner(in)
		}
		if o.Kind == flow.EndpointNode || o.Kind == "" || (o.Kind == flow.EndpointPod && o.PodUID == "") {
			return
		}
		l.others = append(l.others, ownership.Claim{Addr: r.LocalAddr, Port: r.LocalPort, Owner: o, From: r.Start, To: r.End,
			Source: ownership.SourceFlow, Origin: in.Exporter})
	}
}

// observe gives the claims to the store, hands each pod claim's owner to its record (unless
// the full policy decided the record meanwhile) and resets the buffers.
func (l *localClaims) observe(store *ownership.Store) {
	if len(l.pods) > 0 {
		l.refs = slices.Grow(l.refs[:0], len(l.pods))[:len(l.pods)]
		_ = store.ObservePods(l.pods, l.refs)
		for i, r := range l.podOf {
			if r.live() {
				r.h.hint = l.refs[i]
			}
		}
	}
	if len(l.others) > 0 {
		_ = store.Observe(l.others...)
	}
	clear(l.pods)
	clear(l.podOf)
	clear(l.others)
	l.pods, l.podOf, l.others = l.pods[:0], l.podOf[:0], l.others[:0]
}

// lookupTime is the moment a record's remote end is attributed at: its start, or for a
// connection open longer than longConn its end (an established connection keeps its peer, and
// the start may be older than the ownership horizon).
func lookupTime(r *flow.Record, longConn time.Duration) time.Time {
	if r.End.Sub(r.Start) > longConn {
		return r.End
	}
	return r.Start
}
