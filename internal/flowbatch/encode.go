package flowbatch

import (
	"fmt"
	"net/netip"
	"sort"
	"time"
	"unsafe"

	"google.golang.org/protobuf/proto"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/flow"
)

type originKey struct {
	w      flow.Workload
	netns  uint32
	cgroup uint64
	host   bool // host network
}

// Encoder turns batches into their wire form. It reuses its buffers between calls, so one
// Encoder serves one goroutine.
type Encoder struct {
	origins map[originKey]uint32
	guess   [64]struct { // cgroup id → the origin it was last seen with (index+1): a cheap first guess
		cgroup uint64
		idx    uint32
	}
	order   []originKey
	encoded map[originKey][]byte // Batch field 9 for each origin, kept across batches
	recs    []byte
}

// NewEncoder returns an Encoder.
func NewEncoder() *Encoder {
	return &Encoder{origins: make(map[originKey]uint32), encoded: make(map[originKey][]byte)}
}

// Marshal encodes a whole batch, header included.
func (e *Encoder) Marshal(b *Batch) ([]byte, error) {
	body, err := e.AppendBody(nil, b)
	if err != nil {
		return nil, err
	}
	return AppendHeader(body, b.Sequence, b.Counters)
}

// AppendBody appends everything of b except its sequence number and counters, which
// AppendHeader adds when the batch is first sent: a protobuf message may be split into
// concatenated parts, so header + body parse as one Batch.
func (e *Encoder) AppendBody(dst []byte, b *Batch) ([]byte, error) {
	e.reset()
	base := baseTime(b)
	dst = appendBatchHeader(dst, &b.Header, base)
	// Records go straight into dst; the workload table they index follows them (protobuf
	// fields may come in any order), so nothing is copied twice.
	prev := base
	for i := range b.Records {
		dst, prev = e.appendRecord(dst, &b.Records[i], prev)
	}
	aggs := make([]*flowv1.FlowAggregate, len(b.Aggregates))
	for i := range b.Aggregates {
		aggs[i] = e.aggregate(base, &b.Aggregates[i])
	}
	dst, err := e.appendOrigins(dst)
	if err != nil {
		return dst, err
	}
	for _, a := range aggs {
		if dst, err = appendProto(dst, 11, a); err != nil {
			return dst, fmt.Errorf("encoding batch: %w", err)
		}
	}
	if b.Heartbeat != nil {
		if dst, err = appendProto(dst, 12, heartbeatToPB(b.Heartbeat)); err != nil {
			return dst, fmt.Errorf("encoding batch: %w", err)
		}
	}
	return dst, nil
}

func (e *Encoder) reset() {
	clear(e.origins)
	clear(e.guess[:])
	e.order = e.order[:0]
}

// appendBatchHeader appends a batch's identity and base time (fields 1-5 and 7).
func appendBatchHeader(dst []byte, h *Header, base int64) []byte {
	major := h.Major
	if major == 0 {
		major = MajorVersion
	}
	dst = appendUint(dst, 1, uint64(major))
	dst = appendUint(dst, 2, uint64(h.Minor))
	dst = appendString(dst, 3, h.ExporterID)
	dst = appendString(dst, 4, h.NodeName)
	dst = appendString(dst, 5, h.BootID)
	return appendUint(dst, 7, uint64(base))
}

func (e *Encoder) appendRecord(dst []byte, r *flow.Record, prev int64) ([]byte, int64) {
	return appendRecord(dst, r, e.origin(&r.Workload, r.Netns, r.CgroupID, r.HostNetwork), prev)
}

// appendOrigins appends the workload table of the records and aggregates encoded so far.
func (e *Encoder) appendOrigins(dst []byte) ([]byte, error) {
	var err error
	for _, k := range e.order {
		if dst, err = e.appendOrigin(dst, k); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// BodySizeHint is a capacity for AppendBody's buffer that leaves room for the header, so
// neither needs to move the bytes.
func BodySizeHint(records int) int { return 64*records + 2048 }

// AppendHeader appends the sequence number and counters of a batch in wire form.
func AppendHeader(dst []byte, seq uint64, counters []Counter) ([]byte, error) {
	h := &flowv1.Batch{Sequence: seq, Counters: make([]*flowv1.Counter, 0, len(counters))}
	for _, c := range counters {
		h.Counters = append(h.Counters, &flowv1.Counter{Name: c.Name, Value: c.Value})
	}
	out, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(dst, h)
	if err != nil {
		return dst, fmt.Errorf("encoding batch header: %w", err)
	}
	return out, nil
}

// SortCounters orders counters by name so equal batches encode to equal bytes.
func SortCounters(cs []Counter) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
}

// baseTime is the first record's end (or the first aggregate's), 0 for a batch without flows.
func baseTime(b *Batch) int64 {
	switch {
	case len(b.Records) > 0:
		return b.Records[0].End.UnixNano()
	case len(b.Aggregates) > 0:
		return b.Aggregates[0].LastEnd.UnixNano()
	}
	return 0
}

// maxEncodedOrigins bounds the Encoder's cache of encoded workload identities.
const maxEncodedOrigins = 4096

// appendOrigin appends the workload table entry of k: encoded once, then copied from the
// cache in every batch that refers to it.
func (e *Encoder) appendOrigin(dst []byte, k originKey) ([]byte, error) {
	if b, ok := e.encoded[k]; ok {
		return append(dst, b...), nil
	}
	o := &flowv1.Origin{Workload: workloadToPB(k.w), Netns: k.netns, CgroupId: k.cgroup, HostNetwork: k.host}
	b, err := appendProto(nil, 9, o)
	if err != nil {
		return dst, fmt.Errorf("encoding batch: %w", err)
	}
	if len(e.encoded) >= maxEncodedOrigins {
		clear(e.encoded)
	}
	e.encoded[k] = b
	return append(dst, b...), nil
}

func (e *Encoder) origin(w *flow.Workload, netns uint32, cgroup uint64, host bool) uint32 {
	g := &e.guess[cgroup%uint64(len(e.guess))]
	if g.idx != 0 && g.cgroup == cgroup {
		if o := &e.order[g.idx-1]; o.netns == netns && o.host == host && sameWorkload(&o.w, w) {
			return g.idx - 1
		}
	}
	k := originKey{*w, netns, cgroup, host}
	i, ok := e.origins[k]
	if !ok {
		i = uint32(len(e.order))
		e.origins[k] = i
		e.order = append(e.order, k)
	}
	g.cgroup, g.idx = cgroup, i+1
	return i
}

// sameWorkload is *a == *b, cheaper when the strings are shared (an identity cache hands
// out the same strings again): equal pointers need no byte comparison.
func sameWorkload(a, b *flow.Workload) bool {
	return a.Pid == b.Pid && sameString(string(a.Kind), string(b.Kind)) && sameString(a.PodUID, b.PodUID) &&
		sameString(a.ContainerID, b.ContainerID) && sameString(a.Runtime, b.Runtime) && sameString(a.Unit, b.Unit) &&
		sameString(a.CgroupPath, b.CgroupPath) && sameString(a.Comm, b.Comm)
}

func sameString(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}

func (e *Encoder) aggregate(base int64, a *Aggregate) *flowv1.FlowAggregate {
	m := &flowv1.FlowAggregate{
		Origin:             e.origin(&a.Workload, a.Netns, a.CgroupID, false),
		LocalAddr:          addrBytes(a.LocalAddr),
		RemoteAddr:         addrBytes(a.RemoteAddr),
		RemotePort:         uint32(a.RemotePort),
		Direction:          directionToPB[a.Direction],
		Flows:              a.Flows,
		FirstStartOffsetNs: a.FirstStart.UnixNano() - base,
		LastEndOffsetNs:    a.LastEnd.UnixNano() - base,
		BytesSent:          a.BytesSent, BytesReceived: a.BytesReceived,
		SegsSent: a.SegsSent, SegsReceived: a.SegsReceived,
		Retransmits: a.Retransmits, BytesRetransmitted: a.BytesRetransmitted,
		ResetsSent: a.ResetsSent, ResetsReceived: a.ResetsReceived, SrttUsSum: a.SrttUsSum,
	}
	outs := make([]flow.Outcome, 0, len(a.Outcomes))
	for o := range a.Outcomes {
		outs = append(outs, o)
	}
	sort.Slice(outs, func(i, j int) bool { return outs[i] < outs[j] })
	for _, o := range outs {
		m.Outcomes = append(m.Outcomes, &flowv1.OutcomeCount{Outcome: outcomeToPB[o], Count: a.Outcomes[o]})
	}
	return m
}

func heartbeatToPB(h *Heartbeat) *flowv1.OwnershipHeartbeat {
	m := &flowv1.OwnershipHeartbeat{Node: h.Node, TimeUnixNano: unixNano(h.Time), Complete: h.Complete}
	for _, o := range h.Ownerships {
		m.Ownerships = append(m.Ownerships, &flowv1.Ownership{
			Addr: addrBytes(o.Addr), Workload: workloadToPB(o.Workload), Namespace: o.Namespace,
			PodName: o.PodName, Netns: o.Netns, Port: uint32(o.Port), FromUnixNano: unixNano(o.From), ToUnixNano: unixNano(o.To),
		})
	}
	return m
}

func workloadToPB(w flow.Workload) *flowv1.Workload {
	return &flowv1.Workload{
		Kind: kindToPB[w.Kind], PodUid: w.PodUID, ContainerId: w.ContainerID, Runtime: w.Runtime,
		Unit: w.Unit, CgroupPath: w.CgroupPath, Pid: w.Pid, Comm: w.Comm,
	}
}

func addrBytes(a netip.Addr) []byte {
	switch {
	case a.Is4():
		b := a.As4()
		return b[:]
	case a.Is6():
		b := a.As16()
		return b[:]
	}
	return nil
}

func familyToPB(f flow.Family, a netip.Addr) flowv1.Family {
	switch {
	case f == flow.IPv4 && a.Is4(), f == flow.IPv6 && a.Is6():
		return flowv1.Family_FAMILY_UNSPECIFIED // implied by the address length
	case f == flow.IPv4:
		return flowv1.Family_FAMILY_IPV4
	case f == flow.IPv6:
		return flowv1.Family_FAMILY_IPV6
	}
	return flowv1.Family_FAMILY_UNSPECIFIED
}

// unixNano maps the zero time to 0 (absent) instead of time.Time's out-of-range value.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
