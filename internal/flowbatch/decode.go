package flowbatch

import (
	"net/netip"
	"time"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/flow"
)

// FromPB converts a batch that passed Validate into its Go form.
func FromPB(pb *flowv1.Batch) *Batch {
	b := &Batch{
		Header: Header{
			Major: pb.MajorVersion, Minor: pb.MinorVersion, ExporterID: pb.ExporterId,
			NodeName: pb.NodeName, BootID: pb.BootId, Sequence: pb.Sequence,
		},
	}
	if len(pb.Counters) > 0 {
		b.Counters = make([]Counter, len(pb.Counters))
		for i, c := range pb.Counters {
			b.Counters[i] = Counter{Name: c.Name, Value: c.Value}
		}
	}
	origins := make([]flow.Workload, len(pb.Origins))
	for i, o := range pb.Origins {
		origins[i] = workloadFromPB(o.Workload)
	}
	if len(pb.Records) > 0 {
		b.Records = make([]flow.Record, len(pb.Records))
		end := pb.BaseTimeUnixNano
		for i, m := range pb.Records {
			end += m.EndDeltaNs
			recordFromPB(pb, origins, m, &b.Records[i], end)
		}
	}
	for _, m := range pb.Aggregates {
		b.Aggregates = append(b.Aggregates, aggregateFromPB(pb, origins, m))
	}
	if pb.Heartbeat != nil {
		b.Heartbeat = heartbeatFromPB(pb.Heartbeat)
	}
	return b
}

func recordFromPB(pb *flowv1.Batch, origins []flow.Workload, m *flowv1.FlowRecord, r *flow.Record, end int64) {
	o := pb.Origins[m.Origin]
	local := addrFromBytes(m.LocalAddr)
	*r = flow.Record{
		ConnID:     m.ConnId,
		Family:     familyFromPB(m.Family, local),
		LocalAddr:  local,
		LocalPort:  uint16(m.LocalPort),
		RemoteAddr: addrFromBytes(m.RemoteAddr),
		RemotePort: uint16(m.RemotePort),
		Direction:  directionFromPB[m.Direction],
		Netns:      o.Netns, CgroupID: o.CgroupId, Workload: origins[m.Origin], HostNetwork: o.HostNetwork,
		NatRemoteAddr: addrFromBytes(m.NatRemoteAddr), NatRemotePort: uint16(m.NatRemotePort),
		Start:   time.Unix(0, end-int64(m.DurationNs)).UTC(),
		End:     time.Unix(0, end).UTC(),
		Interim: m.Interim, StartKnown: !m.StartUnknown,
		BytesSent: m.BytesSent, BytesReceived: m.BytesReceived,
		SegsSent: m.SegsSent, SegsReceived: m.SegsReceived,
		Retransmits: m.Retransmits, BytesRetransmitted: m.BytesRetransmitted,
		SrttUs: m.SrttUs, MinRttUs: m.MinRttUs,
		ResetsSent: m.ResetsSent, ResetsReceived: m.ResetsReceived,
		Outcome:    outcomeFromPB[m.Outcome],
		CloseState: stateFromPB[m.CloseState],
	}
	if m.CloseStateName != "" {
		r.CloseState = m.CloseStateName
	}
}

func aggregateFromPB(pb *flowv1.Batch, origins []flow.Workload, m *flowv1.FlowAggregate) Aggregate {
	o := pb.Origins[m.Origin]
	a := Aggregate{
		Workload: origins[m.Origin], Netns: o.Netns, CgroupID: o.CgroupId,
		LocalAddr: addrFromBytes(m.LocalAddr), RemoteAddr: addrFromBytes(m.RemoteAddr),
		RemotePort: uint16(m.RemotePort), Direction: directionFromPB[m.Direction],
		Flows:      m.Flows,
		FirstStart: time.Unix(0, pb.BaseTimeUnixNano+m.FirstStartOffsetNs).UTC(),
		LastEnd:    time.Unix(0, pb.BaseTimeUnixNano+m.LastEndOffsetNs).UTC(),
		BytesSent:  m.BytesSent, BytesReceived: m.BytesReceived,
		SegsSent: m.SegsSent, SegsReceived: m.SegsReceived,
		Retransmits: m.Retransmits, BytesRetransmitted: m.BytesRetransmitted,
		ResetsSent: m.ResetsSent, ResetsReceived: m.ResetsReceived, SrttUsSum: m.SrttUsSum,
	}
	if len(m.Outcomes) > 0 {
		a.Outcomes = make(map[flow.Outcome]uint64, len(m.Outcomes))
		for _, oc := range m.Outcomes {
			a.Outcomes[outcomeFromPB[oc.Outcome]] += oc.Count
		}
	}
	return a
}

func heartbeatFromPB(m *flowv1.OwnershipHeartbeat) *Heartbeat {
	h := &Heartbeat{Node: m.Node, Time: fromUnixNano(m.TimeUnixNano), Complete: m.Complete}
	h.Ownerships = make([]Ownership, len(m.Ownerships))
	for i, o := range m.Ownerships {
		h.Ownerships[i] = Ownership{
			Addr: addrFromBytes(o.Addr), Workload: workloadFromPB(o.Workload), Namespace: o.Namespace,
			PodName: o.PodName, Netns: o.Netns, Port: uint16(o.Port), From: fromUnixNano(o.FromUnixNano), To: fromUnixNano(o.ToUnixNano),
		}
	}
	return h
}

func workloadFromPB(w *flowv1.Workload) flow.Workload {
	if w == nil {
		return flow.Workload{}
	}
	return flow.Workload{
		Kind: kindFromPB[w.Kind], PodUID: w.PodUid, ContainerID: w.ContainerId, Runtime: w.Runtime,
		Unit: w.Unit, CgroupPath: w.CgroupPath, Pid: w.Pid, Comm: w.Comm,
	}
}

func addrFromBytes(b []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(b)
	return a
}

func familyFromPB(f flowv1.Family, a netip.Addr) flow.Family {
	switch f {
	case flowv1.Family_FAMILY_IPV4:
		return flow.IPv4
	case flowv1.Family_FAMILY_IPV6:
		return flow.IPv6
	}
	if a.Is4() {
		return flow.IPv4
	}
	return flow.IPv6
}
