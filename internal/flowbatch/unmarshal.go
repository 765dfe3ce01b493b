package flowbatch

import (
	"net/netip"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/flow"
)

// Unmarshal decodes an encoded batch straight into its Go form — the consumers' path, about
// three times cheaper than protobuf's decoder followed by FromPB. It checks structure only
// (what Scan accepted at ingest is valid); it never panics on bad input and then returns an
// error instead. A fuzz test checks it agrees with Decode + FromPB.
func Unmarshal(data []byte) (*Batch, error) {
	b := &Batch{}
	pb := &flowv1.Batch{} // header, origins, and the base time aggregates need
	var records int
	var aggs [][]byte
	var heartbeat []byte
	err := eachField(data, func(num protowire.Number, typ protowire.Type, v uint64, f []byte) error {
		switch {
		case headerField(pb, num, typ, v, f):
		case typ == protowire.BytesType && num == 8:
			c := &flowv1.Counter{}
			if proto.Unmarshal(f, c) != nil {
				return errMalformed
			}
			b.Counters = append(b.Counters, Counter{Name: c.Name, Value: c.Value})
		case typ == protowire.BytesType && num == 9:
			o := &flowv1.Origin{}
			if proto.Unmarshal(f, o) != nil {
				return errMalformed
			}
			pb.Origins = append(pb.Origins, o)
		case typ == protowire.BytesType && num == 10:
			records++
		case typ == protowire.BytesType && num == 11:
			aggs = append(aggs, f)
		case typ == protowire.BytesType && num == 12:
			if heartbeat != nil {
				return errMalformed
			}
			heartbeat = f
		case num >= 1 && num <= 12:
			return errMalformed
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	b.Header = Header{Major: pb.MajorVersion, Minor: pb.MinorVersion, ExporterID: pb.ExporterId,
		NodeName: pb.NodeName, BootID: pb.BootId, Sequence: pb.Sequence}
	origins := make([]flow.Workload, len(pb.Origins))
	for i, o := range pb.Origins {
		origins[i] = workloadFromPB(o.Workload)
	}
	if records > 0 {
		if err := unmarshalRecords(data, pb, origins, records, b); err != nil {
			return nil, err
		}
	}
	for _, f := range aggs {
		a := &flowv1.FlowAggregate{}
		if proto.Unmarshal(f, a) != nil || int(a.Origin) >= len(origins) {
			return nil, errMalformed
		}
		b.Aggregates = append(b.Aggregates, aggregateFromPB(pb, origins, a))
	}
	if heartbeat != nil {
		h := &flowv1.OwnershipHeartbeat{}
		if proto.Unmarshal(heartbeat, h) != nil {
			return nil, errMalformed
		}
		b.Heartbeat = heartbeatFromPB(h)
	}
	return b, nil
}

func unmarshalRecords(data []byte, pb *flowv1.Batch, origins []flow.Workload, n int, b *Batch) error {
	b.Records = make([]flow.Record, n)
	i, end := 0, pb.BaseTimeUnixNano
	return eachField(data, func(num protowire.Number, typ protowire.Type, _ uint64, f []byte) error {
		if num != 10 || typ != protowire.BytesType {
			return nil
		}
		var err error
		end, err = unmarshalRecord(f, pb, origins, end, &b.Records[i])
		i++
		return err
	})
}

// unmarshalRecord decodes one FlowRecord whose predecessor ended at prev; it returns its end.
func unmarshalRecord(f []byte, pb *flowv1.Batch, origins []flow.Workload, prev int64, r *flow.Record) (int64, error) {
	var m struct {
		local, remote, nat           []byte
		delta                        int64
		dur                          uint64
		origin, dir, out, state, fam uint64
		startUnknown                 bool
		stateName                    string
	}
	for len(f) > 0 {
		var num protowire.Number
		var typ protowire.Type
		if f[0] < 0x80 {
			num, typ = protowire.Number(f[0]>>3), protowire.Type(f[0]&7)
			f = f[1:]
		} else {
			var n int
			if num, typ, n = protowire.ConsumeTag(f); n < 0 {
				return 0, errMalformed
			}
			f = f[n:]
		}
		switch typ {
		case protowire.VarintType:
			x, n := consumeVarint(f)
			if n < 0 {
				return 0, errMalformed
			}
			f = f[n:]
			setRecordVarint(r, &m.delta, &m.dur, &m.origin, &m.dir, &m.out, &m.state, &m.fam, &m.startUnknown, num, x)
		case protowire.BytesType:
			x, n := protowire.ConsumeBytes(f)
			if n < 0 {
				return 0, errMalformed
			}
			f = f[n:]
			switch num {
			case 2:
				m.local = x
			case 4:
				m.remote = x
			case 24:
				m.stateName = string(x)
			case 26:
				m.nat = x
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, f)
			if n < 0 {
				return 0, errMalformed
			}
			f = f[n:]
		}
	}
	if m.origin >= uint64(len(origins)) {
		return 0, errMalformed
	}
	end := prev + m.delta
	o := pb.Origins[m.origin]
	r.LocalAddr, r.RemoteAddr = addrFrom(m.local), addrFrom(m.remote)
	r.Family = familyFromPB(flowv1.Family(m.fam), r.LocalAddr)
	r.Direction = directionFromPB[flowv1.Direction(m.dir)]
	r.Outcome = outcomeFromPB[flowv1.Outcome(m.out)]
	r.CloseState = stateFromPB[flowv1.TCPState(m.state)]
	if m.stateName != "" {
		r.CloseState = m.stateName
	}
	r.Netns, r.CgroupID, r.Workload, r.HostNetwork = o.Netns, o.CgroupId, origins[m.origin], o.HostNetwork
	r.NatRemoteAddr = addrFrom(m.nat)
	r.End = time.Unix(0, end).UTC()
	r.Start = time.Unix(0, end-int64(m.dur)).UTC()
	r.StartKnown = !m.startUnknown
	return end, nil
}

func setRecordVarint(r *flow.Record, delta *int64, dur, origin, dir, out, state, fam *uint64, startUnknown *bool, num protowire.Number, x uint64) {
	switch num {
	case 1:
		r.ConnID = x
	case 3:
		r.LocalPort = uint16(x)
	case 5:
		r.RemotePort = uint16(x)
	case 6:
		*dir = uint64(uint32(x))
	case 7:
		*origin = uint64(uint32(x))
	case 8:
		*delta = protowire.DecodeZigZag(x)
	case 9:
		*dur = x
	case 10:
		r.Interim = x != 0
	case 11:
		*startUnknown = x != 0
	case 12:
		r.BytesSent = x
	case 13:
		r.BytesReceived = x
	case 14:
		r.SegsSent = x
	case 15:
		r.SegsReceived = x
	case 16:
		r.Retransmits = x
	case 17:
		r.BytesRetransmitted = x
	case 18:
		r.SrttUs = uint32(x)
	case 19:
		r.MinRttUs = uint32(x)
	case 20:
		r.ResetsSent = uint32(x)
	case 21:
		r.ResetsReceived = uint32(x)
	case 22:
		*out = uint64(uint32(x))
	case 23:
		*state = uint64(uint32(x))
	case 25:
		*fam = uint64(uint32(x))
	case 27:
		r.NatRemotePort = uint16(x)
	}
}

func addrFrom(b []byte) netip.Addr {
	switch len(b) {
	case 4:
		return netip.AddrFrom4([4]byte(b))
	case 16:
		return netip.AddrFrom16([16]byte(b))
	}
	return netip.Addr{}
}
