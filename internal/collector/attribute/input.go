// Package attribute turns exporter records into attributed connections: each record waits in a
// bounded holding window until the ownership store can name its remote end at the flow's start
// (or until the window ends: then it is unattributed, with a reason), the client's and the
// server's records of one connection are joined and cross-checked, and the result goes to a Sink.
package attribute

import (
	"context"
	"fmt"
	"net/netip"
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
}

// Sink receives attributed connections. Write is called from one goroutine at a time with a
// batch the Sink may keep (the Attributor does not reuse it); Endpoint.Labels maps are shared
// and read-only. An error is counted and the batch is offered again on the next flush.
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
func hostOwner(in *Input) (ownership.Owner, bool) { return hostOwnerOf(in.Node, &in.Record.Workload) }

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

// claim is what the record's local end proves about ownership: a pod held its address (or,
// in the host network, its listening port) over the record.
func claim(in *Input, o ownership.Owner) (ownership.Claim, bool) {
	r := &in.Record
	c := ownership.Claim{Addr: r.LocalAddr, Owner: o, From: r.Start, To: r.End, Source: ownership.SourceFlow, Origin: in.Exporter}
	switch {
	case o.Kind == flow.EndpointPod && o.PodUID != "" && !in.Record.HostNetwork:
		if !in.isClient() {
			c.ListenPort = r.LocalPort // if the address turns out to be a node's (host network)
		}
		return c, true
	case in.Record.HostNetwork && !in.isClient() && o.Kind != flow.EndpointNode && o.Kind != "":
		c.Port = r.LocalPort
		return c, true
	}
	return ownership.Claim{}, false
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
