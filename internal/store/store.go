// Package store defines what flowscope keeps about attributed connections and how the answers
// query it: raw flows for a retention period, per-minute edges between workloads rolled up to
// hours, and the query types the HTTP API serves. Implementations live in sub-packages (the
// embedded DuckDB store in store/duckdb); nothing else imports a database driver.
package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/sketch"
)

// ErrFull is returned by Write when the store cannot take more data (the disk is full or the
// store stopped accepting after a write failure). Nothing of the failed call was acknowledged;
// callers stop acknowledging their batches so that exporters buffer and retry.
var ErrFull = errors.New("store full: ingestion stopped")

// ErrNotFound is returned by queries for an edge or workload the store does not know.
var ErrNotFound = errors.New("not found")

// Store is where attributed connections go and where the answers come from.
//
// Write is safe for concurrent use with the queries; a nil error means the conns are durable
// (they survive a crash of the process). Queries take a Range that the caller validated.
type Store interface {
	Sink
	Querier
	Close() error
}

// Sink takes attributed connections (including unattributed ones, which carry their reason).
// Write must not retain conns (nor pointers into it) after returning: the caller reuses the
// slice. Copied flow.Conn values stay valid (their strings and VIP endpoints are not reused;
// VIP endpoints and Endpoint.Labels maps are shared and read-only).
type Sink interface {
	Write(ctx context.Context, conns []flow.Conn) error
}

// Querier answers the questions of the API.
type Querier interface {
	// Edges aggregates edges over q.Range, filtered and ordered as q says.
	Edges(ctx context.Context, q EdgeQuery) ([]Edge, error)
	// NodeHealth aggregates traffic per Kubernetes node (both roles) over r.
	NodeHealth(ctx context.Context, r Range) ([]NodeStats, error)
	// ZoneHealth aggregates traffic per pair of zones (client's, server's) over r.
	ZoneHealth(ctx context.Context, r Range) ([]ZoneStats, error)
	// EdgeSeries returns the edge's per-step totals over r (step is a minute or an hour).
	EdgeSeries(ctx context.Context, key EdgeKey, r Range, step time.Duration) ([]Point, error)
	// Flows returns the most recent raw flows matching q, newest first.
	Flows(ctx context.Context, q FlowQuery) ([]flow.Conn, error)
	// FlowGroups returns the distinct (client, server, server port) groups of raw flows in r,
	// with addresses for endpoints outside the cluster: what policy evaluation needs.
	FlowGroups(ctx context.Context, r Range, namespaces []string) ([]FlowGroup, error)
	// Unattributed counts raw flows with an unattributed end, by reason and side.
	Unattributed(ctx context.Context, r Range) ([]ReasonCount, error)
	// Nodes lists every graph node the store knows (workloads, services, networks, ...).
	Nodes(ctx context.Context) ([]Node, error)
	// Coverage is the time span the store holds data for, per level.
	Coverage(ctx context.Context) (Coverage, error)
}

// Range is a half-open time interval [From, To).
type Range struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Validate checks that the range is not reversed or empty and at most max long.
func (r Range) Validate(max time.Duration) error {
	switch {
	case r.From.IsZero() || r.To.IsZero():
		return errors.New("time range needs both from and to")
	case !r.To.After(r.From):
		return fmt.Errorf("time range reversed or empty: from %s is not before to %s", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	case r.To.Sub(r.From) > max:
		return fmt.Errorf("time range of %s exceeds the maximum of %s", r.To.Sub(r.From), max)
	}
	return nil
}

// Direction classifies an edge relative to the cluster.
type Direction uint8

// Directions. NodeOut and NodeIn are not edges between workloads but per-node totals (the
// node's pods as clients, as servers), kept in the same tables so they roll up the same way.
const (
	Internal Direction = 1 // both ends inside the cluster (or on monitored hosts)
	Ingress  Direction = 2 // the client is outside (a named network or unattributed)
	Egress   Direction = 3 // the server is outside
	NodeOut  Direction = 4 // per-node totals of connections its workloads opened
	NodeIn   Direction = 5 // per-node totals of connections its workloads accepted
	ZonePath Direction = 6 // per pair of zones (ZoneNode ids): totals of connections from the first to the second
)

var directionNames = map[Direction]string{Internal: "internal", Ingress: "ingress", Egress: "egress", NodeOut: "node-out", NodeIn: "node-in", ZonePath: "zone-path"}

// NoZone stands for the zone of an end that has none (outside the cluster, or a node without
// the topology.kubernetes.io/zone label) in zone paths.
const NoZone = "-"

// ZoneKind is the Node kind of zones (ids "zone/<name>"), the ends of zone paths.
const ZoneKind flow.EndpointKind = "zone"

// ZoneNode is the node id of a zone ("" for NoZone).
func ZoneNode(zone string) string {
	if zone == "" {
		zone = NoZone
	}
	return "zone/" + zone
}

func (d Direction) String() string {
	if s, ok := directionNames[d]; ok {
		return s
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// MarshalText implements encoding.TextMarshaler.
func (d Direction) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Direction) UnmarshalText(b []byte) error {
	for k, v := range directionNames {
		if v == string(b) {
			*d = k
			return nil
		}
	}
	return fmt.Errorf("unknown direction %q", b)
}

// EdgeKey identifies an edge: source workload → destination workload (or Service, named network,
// unattributed bucket) on a destination port, optionally through a Service address.
type EdgeKey struct {
	Src       string    `json:"src"`               // Node.ID of the client side
	Dst       string    `json:"dst"`               // Node.ID of the server side
	Service   string    `json:"service,omitempty"` // Node.ID of the Service dialled, when translated
	Port      uint16    `json:"port"`
	Direction Direction `json:"direction"`
}

func (k EdgeKey) String() string {
	s := fmt.Sprintf("%s -> %s:%d", k.Src, k.Dst, k.Port)
	if k.Service != "" {
		s += " via " + k.Service
	}
	return s
}

// Less orders keys by source, destination, port, Service and direction.
func (k EdgeKey) Less(o EdgeKey) bool {
	if k.Src != o.Src {
		return k.Src < o.Src
	}
	if k.Dst != o.Dst {
		return k.Dst < o.Dst
	}
	if k.Port != o.Port {
		return k.Port < o.Port
	}
	if k.Service != o.Service {
		return k.Service < o.Service
	}
	return k.Direction < o.Direction
}

// Counters are the additive totals of an edge over some time.
type Counters struct {
	Flows               uint64 `json:"flows"` // connection records (intervals) seen
	BytesClientToServer uint64 `json:"bytes_client_to_server"`
	BytesServerToClient uint64 `json:"bytes_server_to_client"`
	Opened              uint64 `json:"opened"` // connections first seen (attempts, including failed ones)
	Closed              uint64 `json:"closed"` // connections ended (final records, failed ones included)
	Refused             uint64 `json:"refused"`
	Timeout             uint64 `json:"timeout"`
	Reset               uint64 `json:"reset"` // reset by the peer or aborted
	Retransmits         uint64 `json:"retransmits"`
	// PeakBytesPerMinute is the largest one-minute byte total (both ways) in the span: a
	// maximum, not a sum, when counters are merged.
	PeakBytesPerMinute uint64 `json:"peak_bytes_per_minute"`
}

// Failed is the number of connections that failed, of any kind.
func (c Counters) Failed() uint64 { return c.Refused + c.Timeout + c.Reset }

// Add merges o into c.
func (c *Counters) Add(o Counters) {
	c.Flows += o.Flows
	c.BytesClientToServer += o.BytesClientToServer
	c.BytesServerToClient += o.BytesServerToClient
	c.Opened += o.Opened
	c.Closed += o.Closed
	c.Refused += o.Refused
	c.Timeout += o.Timeout
	c.Reset += o.Reset
	c.Retransmits += o.Retransmits
	c.PeakBytesPerMinute = max(c.PeakBytesPerMinute, o.PeakBytesPerMinute)
}

// EdgeRow is one edge over one minute or hour: the unit the store writes and rolls up.
type EdgeRow struct {
	Time time.Time // start of the minute (or hour)
	Key  EdgeKey
	Counters
	RTT sketch.Sketch // client-observed smoothed RTT of the edge's connections, µs
}

// Edge is an edge aggregated over a query's range.
type Edge struct {
	EdgeKey
	Counters
	RTT *sketch.Sketch `json:"-"` // nil unless the query asked for it
}

// Order says how a query ranks edges.
type Order string

// Orders.
const (
	ByBytes       Order = "bytes"
	ByConnections Order = "connections"
	ByFailures    Order = "failures"
	ByRetransmits Order = "retransmits"
)

// Value is the quantity o ranks by: bytes both ways, connections opened, failures or
// retransmits.
func (c Counters) Value(o Order) uint64 {
	switch o {
	case ByConnections:
		return c.Opened
	case ByFailures:
		return c.Failed()
	case ByRetransmits:
		return c.Retransmits
	}
	return c.BytesClientToServer + c.BytesServerToClient
}

// ValidOrder reports whether o is a known order.
func ValidOrder(o Order) bool {
	switch o {
	case ByBytes, ByConnections, ByFailures, ByRetransmits:
		return true
	}
	return false
}

// EdgeQuery selects edges.
type EdgeQuery struct {
	Range
	Namespaces []string    // keep edges with either end in one of these namespaces; empty: all
	Workload   string      // keep edges with this Node.ID at either end; empty: all
	Directions []Direction // empty: Internal, Ingress and Egress
	Order      Order       // empty: by bytes
	Limit      int         // 0: no limit
	WithRTT    bool        // merge the RTT sketches of the returned edges
}

// NodeStats are the totals of one Kubernetes node's workloads over a range.
type NodeStats struct {
	Node string         `json:"node"`
	Zone string         `json:"zone,omitempty"`
	Out  Counters       `json:"out"` // as clients
	In   Counters       `json:"in"`  // as servers
	RTT  *sketch.Sketch `json:"-"`
}

// ZoneStats are the totals of the connections from one zone to another over a range (Client
// or Server NoZone for ends without one).
type ZoneStats struct {
	Client string `json:"client"`
	Server string `json:"server"`
	Counters
	RTT *sketch.Sketch `json:"-"`
}

// Point is one step of an edge's time series.
type Point struct {
	Time time.Time `json:"time"`
	Counters
	RTTp50us uint32 `json:"rtt_p50_us"`
	RTTp99us uint32 `json:"rtt_p99_us"`
}

// FlowQuery selects raw flows.
type FlowQuery struct {
	Range
	Edge  *EdgeKey // only flows behind this edge
	Limit int      // at most this many (newest first); 0 means 100
}

// FlowGroup is a group of raw flows with the same ends and server port.
type FlowGroup struct {
	Client flow.Endpoint `json:"client"`
	Server flow.Endpoint `json:"server"`
	Flows  uint64        `json:"flows"`
	Bytes  uint64        `json:"bytes"`
	First  time.Time     `json:"first"`
	Last   time.Time     `json:"last"`
}

// ReasonCount counts unattributed flow ends.
type ReasonCount struct {
	Reason flow.Reason `json:"reason"`
	Side   string      `json:"side"` // "client" or "server"
	Flows  uint64      `json:"flows"`
	Bytes  uint64      `json:"bytes"`
}

// Node is a vertex of the dependency graph.
type Node struct {
	ID           string            `json:"id"` // flow.Endpoint.Name()
	Kind         flow.EndpointKind `json:"kind"`
	Cluster      string            `json:"cluster,omitempty"`
	Namespace    string            `json:"namespace,omitempty"`
	Name         string            `json:"name"` // workload, Service, network or node name; the reason for unattributed
	WorkloadKind string            `json:"workload_kind,omitempty"`
	Zone         string            `json:"zone,omitempty"` // for Kubernetes nodes: topology.kubernetes.io/zone
	Labels       map[string]string `json:"labels,omitempty"`
}

// NodeOf returns the graph node of an endpoint. Pod labels that differ per pod of a workload
// (pod-template-hash, controller-revision-hash, statefulset pod name) are dropped.
func NodeOf(e flow.Endpoint) Node {
	n := Node{ID: e.Name(), Kind: e.Kind, Cluster: e.Cluster, Namespace: e.Namespace, WorkloadKind: e.WorkloadKind}
	switch e.Kind {
	case flow.EndpointUnattributed:
		n.Name, n.Namespace = string(e.Reason), ""
	case flow.EndpointNetwork:
		n.Name, n.Namespace = e.Network, ""
	case flow.EndpointService:
		n.Name = e.Service
	case flow.EndpointNode:
		n.Name, n.Namespace, n.Zone = e.Node, "", e.Zone
	default:
		n.Name = e.Workload
	}
	if len(e.Labels) > 0 {
		n.Labels = make(map[string]string, len(e.Labels))
		for k, v := range e.Labels {
			switch k {
			case "pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name", "pod-template-generation", "apps.kubernetes.io/pod-index":
				continue
			}
			n.Labels[k] = v
		}
	}
	return n
}

// Outside reports whether an endpoint is outside the cluster (ingress/egress classification).
func Outside(e flow.Endpoint) bool {
	return e.Kind == flow.EndpointNetwork || e.Kind == flow.EndpointUnattributed
}

// Coverage says which spans the store holds.
type Coverage struct {
	RawFrom    time.Time `json:"raw_from"`
	MinuteFrom time.Time `json:"minute_from"`
	HourFrom   time.Time `json:"hour_from"`
	Latest     time.Time `json:"latest"`
}

// Retention says how long each level is kept.
type Retention struct {
	Raw    time.Duration `json:"raw"`
	Minute time.Duration `json:"minute"`
	Hour   time.Duration `json:"hour"`
}

// DefaultRetention keeps raw flows a day, minute edges a week and hour edges 90 days.
var DefaultRetention = Retention{Raw: 24 * time.Hour, Minute: 7 * 24 * time.Hour, Hour: 90 * 24 * time.Hour}

// ParseRetention reads retention overrides such as "raw=48h,minute=14d,hour=180d" (levels raw,
// minute (also the ten-minute rows) and hour (also the six-hour rows); durations in Go syntax
// or whole days with a d suffix). Levels not named keep DefaultRetention's; "" gives it.
func ParseRetention(s string) (Retention, error) {
	r := DefaultRetention
	if strings.TrimSpace(s) == "" {
		return r, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		level, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return r, fmt.Errorf("retention %q: want level=duration, e.g. raw=48h,minute=14d,hour=180d", part)
		}
		d, err := parseDays(val)
		if err != nil || d <= 0 {
			return r, fmt.Errorf("retention %q: %q is not a positive duration like 48h or 14d", part, val)
		}
		switch level {
		case "raw":
			r.Raw = d
		case "minute":
			r.Minute = d
		case "hour":
			r.Hour = d
		default:
			return r, fmt.Errorf("retention %q: unknown level %q (want raw, minute or hour)", part, level)
		}
	}
	if r.Raw > r.Minute || r.Minute > r.Hour {
		return r, fmt.Errorf("retention %s: each level must be kept at least as long as the finer one (raw ≤ minute ≤ hour)", s)
	}
	return r, nil
}

func parseDays(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		return time.Duration(days) * 24 * time.Hour, err
	}
	return time.ParseDuration(v)
}
