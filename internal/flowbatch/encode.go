package flowbatch

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/flow"
)

type originKey struct {
	w      flow.Workload
	netns  uint32
	cgroup uint64
}

// Encoder turns batches into their wire form. It reuses its buffers between calls, so one
// Encoder serves one goroutine.
type Encoder struct {
	origins map[originKey]uint32
	pb      flowv1.Batch
	recs    []flowv1.FlowRecord
	ptrs    []*flowv1.FlowRecord
	opts    proto.MarshalOptions
}

// NewEncoder returns an Encoder.
func NewEncoder() *Encoder {
	return &Encoder{origins: make(map[originKey]uint32), opts: proto.MarshalOptions{Deterministic: true}}
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
	pb := e.build(b)
	out, err := e.opts.MarshalAppend(dst, pb)
	if err != nil {
		return dst, fmt.Errorf("encoding batch: %w", err)
	}
	return out, nil
}

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

func (e *Encoder) build(b *Batch) *flowv1.Batch {
	clear(e.origins)
	pb := &e.pb
	origins := pb.Origins[:0]
	*pb = flowv1.Batch{
		MajorVersion: b.Major, MinorVersion: b.Minor, ExporterId: b.ExporterID,
		NodeName: b.NodeName, BootId: b.BootID, Origins: origins,
	}
	if pb.MajorVersion == 0 {
		pb.MajorVersion = MajorVersion
	}
	pb.BaseTimeUnixNano = baseTime(b)
	if cap(e.recs) < len(b.Records) {
		e.recs = make([]flowv1.FlowRecord, len(b.Records))
		e.ptrs = make([]*flowv1.FlowRecord, len(b.Records))
		for i := range e.recs {
			e.ptrs[i] = &e.recs[i]
		}
	}
	pb.Records = e.ptrs[:len(b.Records)]
	prev := pb.BaseTimeUnixNano
	for i := range b.Records {
		prev = e.record(pb, &b.Records[i], pb.Records[i], prev)
	}
	for i := range b.Aggregates {
		pb.Aggregates = append(pb.Aggregates, e.aggregate(pb, &b.Aggregates[i]))
	}
	if b.Heartbeat != nil {
		pb.Heartbeat = heartbeatToPB(b.Heartbeat)
	}
	return pb
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

func (e *Encoder) origin(pb *flowv1.Batch, w flow.Workload, netns uint32, cgroup uint64) uint32 {
	k := originKey{w, netns, cgroup}
	if i, ok := e.origins[k]; ok {
		return i
	}
	i := uint32(len(pb.Origins))
	e.origins[k] = i
	pb.Origins = append(pb.Origins, &flowv1.Origin{Workload: workloadToPB(w), Netns: netns, CgroupId: cgroup})
	return i
}

// record fills m from r; prev is the previous record's end, and record returns r's.
func (e *Encoder) record(pb *flowv1.Batch, r *flow.Record, m *flowv1.FlowRecord, prev int64) int64 {
	end := r.End.UnixNano()
	dur := end - r.Start.UnixNano()
	if dur < 0 {
		dur = 0 // a start after the end is a clock artefact: the flow took no time
	}
	*m = flowv1.FlowRecord{
		ConnId:     r.ConnID,
		LocalAddr:  addrBytes(r.LocalAddr),
		LocalPort:  uint32(r.LocalPort),
		RemoteAddr: addrBytes(r.RemoteAddr),
		RemotePort: uint32(r.RemotePort),
		Direction:  directionToPB[r.Direction],
		Origin:     e.origin(pb, r.Workload, r.Netns, r.CgroupID),
		EndDeltaNs: end - prev,
		DurationNs: uint64(dur),
		Interim:    r.Interim, StartUnknown: !r.StartKnown,
		BytesSent: r.BytesSent, BytesReceived: r.BytesReceived,
		SegsSent: r.SegsSent, SegsReceived: r.SegsReceived,
		Retransmits: r.Retransmits, BytesRetransmitted: r.BytesRetransmitted,
		SrttUs: r.SrttUs, MinRttUs: r.MinRttUs,
		ResetsSent: r.ResetsSent, ResetsReceived: r.ResetsReceived,
		Outcome: outcomeToPB[r.Outcome],
		Family:  familyToPB(r.Family, r.LocalAddr),
	}
	if r.CloseState != "" {
		if s, ok := stateToPB[r.CloseState]; ok {
			m.CloseState = s
		} else {
			m.CloseStateName = r.CloseState
		}
	}
	return end
}

func (e *Encoder) aggregate(pb *flowv1.Batch, a *Aggregate) *flowv1.FlowAggregate {
	m := &flowv1.FlowAggregate{
		Origin:             e.origin(pb, a.Workload, a.Netns, a.CgroupID),
		LocalAddr:          addrBytes(a.LocalAddr),
		RemoteAddr:         addrBytes(a.RemoteAddr),
		RemotePort:         uint32(a.RemotePort),
		Direction:          directionToPB[a.Direction],
		Flows:              a.Flows,
		FirstStartOffsetNs: a.FirstStart.UnixNano() - pb.BaseTimeUnixNano,
		LastEndOffsetNs:    a.LastEnd.UnixNano() - pb.BaseTimeUnixNano,
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
			PodName: o.PodName, Netns: o.Netns, FromUnixNano: unixNano(o.From), ToUnixNano: unixNano(o.To),
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
