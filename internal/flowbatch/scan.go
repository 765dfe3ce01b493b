package flowbatch

import (
	"math"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
)

// Summary is what the collector needs of a batch to accept it: its identity and sizes.
type Summary struct {
	Header
	Records, Aggregates, Ownerships int
	Counters                        []Counter
}

var errMalformed = &RejectError{Reason: flowv1.RejectReason_REJECT_REASON_MALFORMED, Msg: "not a well-formed batch"}

// Scan validates an encoded batch like Decode does, without building it: records are checked
// in place, so accepting a batch costs no allocation per flow. Scan is at least as strict as
// Decode (a fuzz test checks that whatever Scan accepts, Decode accepts with the same header).
func Scan(data []byte, lim Limits, now time.Time) (Summary, error) {
	var s Summary
	if lim.MaxBytes > 0 && len(data) > lim.MaxBytes {
		return s, reject(flowv1.RejectReason_REJECT_REASON_TOO_LARGE, "batch of %d bytes exceeds %d", len(data), lim.MaxBytes)
	}
	hdr := &flowv1.Batch{} // header fields only: counters, origins and records stay nil
	var origins, counters int
	var heartbeat []byte
	err := eachField(data, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		if typ == protowire.BytesType && num >= 3 && num <= 5 && !utf8.Valid(b) {
			return errMalformed // protobuf checks every occurrence of a string field
		}
		switch {
		case headerField(hdr, num, typ, v, b):
		case typ == protowire.BytesType && num == 8:
			counters++
			c := &flowv1.Counter{}
			if proto.Unmarshal(b, c) != nil {
				return errMalformed
			}
			if c.Name == "" {
				return reject(flowv1.RejectReason_REJECT_REASON_INVALID, "counter without a name")
			}
			s.Counters = append(s.Counters, Counter{Name: c.Name, Value: c.Value})
			return checkString(c.Name, lim)
		case typ == protowire.BytesType && num == 9:
			origins++
		case typ == protowire.BytesType && num == 10:
			s.Records++
		case typ == protowire.BytesType && num == 11:
			s.Aggregates++
		case typ == protowire.BytesType && num == 12:
			if heartbeat != nil {
				return errMalformed // proto would merge two heartbeats: refuse instead
			}
			heartbeat = b
		case num >= 1 && num <= 12:
			return errMalformed // a known field with the wrong wire type
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	if hdr.MajorVersion != MajorVersion {
		return s, reject(flowv1.RejectReason_REJECT_REASON_VERSION, "unsupported major version %d (this collector speaks %d)", hdr.MajorVersion, MajorVersion)
	}
	if counters > lim.MaxCounters {
		return s, reject(flowv1.RejectReason_REJECT_REASON_TOO_LARGE, "%d counters exceed %d", counters, lim.MaxCounters)
	}
	if err := validateHeader(hdr, lim); err != nil {
		return s, err
	}
	s.Header = Header{Major: hdr.MajorVersion, Minor: hdr.MinorVersion, ExporterID: hdr.ExporterId,
		NodeName: hdr.NodeName, BootID: hdr.BootId, Sequence: hdr.Sequence}
	if n := s.Records + s.Aggregates; n > lim.MaxRecords {
		return s, reject(flowv1.RejectReason_REJECT_REASON_TOO_LARGE, "%d records exceed %d", n, lim.MaxRecords)
	}
	if origins > lim.MaxOrigins {
		return s, reject(flowv1.RejectReason_REJECT_REASON_TOO_LARGE, "%d workloads exceed %d", origins, lim.MaxOrigins)
	}
	v := timeCheck{lim: lim, now: now.UnixNano()}
	if s.Records > 0 || s.Aggregates > 0 {
		if err := v.at("base time", hdr.BaseTimeUnixNano); err != nil {
			return s, err
		}
	}
	if err := scanBody(data, hdr, origins, lim, v); err != nil {
		return s, err
	}
	if heartbeat != nil {
		h := &flowv1.OwnershipHeartbeat{}
		if proto.Unmarshal(heartbeat, h) != nil {
			return s, errMalformed
		}
		s.Ownerships = len(h.Ownerships)
		return s, validateHeartbeat(h, lim, v)
	}
	return s, nil
}

// headerField stores Batch fields 1-7 (identity, sequence, base time) into pb; false for
// other fields.
func headerField(pb *flowv1.Batch, num protowire.Number, typ protowire.Type, v uint64, b []byte) bool {
	switch {
	case typ == protowire.VarintType && num == 1:
		pb.MajorVersion = uint32(v)
	case typ == protowire.VarintType && num == 2:
		pb.MinorVersion = uint32(v)
	case typ == protowire.BytesType && num == 3:
		pb.ExporterId = string(b)
	case typ == protowire.BytesType && num == 4:
		pb.NodeName = string(b)
	case typ == protowire.BytesType && num == 5:
		pb.BootId = string(b)
	case typ == protowire.VarintType && num == 6:
		pb.Sequence = v
	case typ == protowire.VarintType && num == 7:
		pb.BaseTimeUnixNano = int64(v)
	default:
		return false
	}
	return true
}

// scanBody checks origins, records and aggregates, in order.
func scanBody(data []byte, hdr *flowv1.Batch, origins int, lim Limits, v timeCheck) error {
	pb := &flowv1.Batch{BaseTimeUnixNano: hdr.BaseTimeUnixNano, Origins: make([]*flowv1.Origin, origins)}
	prev := hdr.BaseTimeUnixNano
	oi := 0
	return eachField(data, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 9:
			o := &flowv1.Origin{}
			if proto.Unmarshal(b, o) != nil {
				return errMalformed
			}
			pb.Origins[oi] = o
			oi++
			return validateWorkload(o.Workload, lim)
		case 10:
			end, err := scanRecord(b, origins, prev, v)
			prev = end
			return err
		case 11:
			a := &flowv1.FlowAggregate{}
			if proto.Unmarshal(b, a) != nil {
				return errMalformed
			}
			return validateAggregate(pb, a, v)
		}
		return nil
	})
}

// eachField calls f for every field of a message: v for varints, b for length-delimited.
func eachField(data []byte, f func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error) error {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 || !num.IsValid() {
			return errMalformed
		}
		data = data[n:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(data)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(data)
		default:
			n = protowire.ConsumeFieldValue(num, typ, data)
		}
		if n < 0 {
			return errMalformed
		}
		data = data[n:]
		if err := f(num, typ, v, b); err != nil {
			return err
		}
	}
	return nil
}

// scanRecord checks one FlowRecord in place (validateRecord's rules) and returns its end.
func scanRecord(b []byte, origins int, prev int64, v timeCheck) (int64, error) {
	var (
		local, remote, nat                []byte
		lport, rport, origin, dir, family uint64
		natPort                           uint64
		outcome, state                    uint64
		delta                             int64
		dur                               uint64
		stateName                         []byte
	)
	for len(b) > 0 {
		var num protowire.Number
		var typ protowire.Type
		if b[0] < 0x80 { // one-byte tag: fields 1-15
			num, typ = protowire.Number(b[0]>>3), protowire.Type(b[0]&7)
			b = b[1:]
		} else {
			var n int
			num, typ, n = protowire.ConsumeTag(b)
			if n < 0 {
				return 0, errMalformed
			}
			b = b[n:]
		}
		if !num.IsValid() {
			return 0, errMalformed
		}
		switch typ {
		case protowire.VarintType:
			x, m := consumeVarint(b)
			if m < 0 {
				return 0, errMalformed
			}
			b = b[m:]
			switch num {
			case 3:
				lport = x
			case 5:
				rport = x
			case 6:
				dir = x
			case 7:
				origin = x
			case 8:
				delta = protowire.DecodeZigZag(x)
			case 9:
				dur = x
			case 22:
				outcome = x
			case 23:
				state = x
			case 25:
				family = x
			case 27:
				natPort = x
			case 2, 4, 24, 26:
				return 0, errMalformed
			}
		case protowire.BytesType:
			x, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return 0, errMalformed
			}
			b = b[m:]
			switch num {
			case 2:
				local = x
			case 4:
				remote = x
			case 24:
				if !utf8.Valid(x) { // protobuf checks every occurrence
					return 0, errMalformed
				}
				stateName = x
			case 26:
				nat = x
			case 1, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 25, 27:
				return 0, errMalformed
			}
		default:
			if num >= 1 && num <= 27 {
				return 0, errMalformed
			}
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return 0, errMalformed
			}
			b = b[m:]
		}
	}
	invalid := flowv1.RejectReason_REJECT_REASON_INVALID
	switch {
	case !validAddr(local) || !validAddr(remote):
		return 0, reject(invalid, "addresses must be 4 or 16 bytes")
	case len(nat) != 0 && !validAddr(nat):
		return 0, reject(invalid, "NAT address must be 4 or 16 bytes")
	case lport > math.MaxUint16 || rport > math.MaxUint16 || natPort > math.MaxUint16:
		return 0, reject(invalid, "port out of range")
	case origin >= uint64(origins):
		return 0, reject(invalid, "workload index %d out of %d", origin, origins)
	case dir == 0 || !knownEnum(flowv1.Direction_name, enum32(dir)):
		return 0, reject(invalid, "unknown direction %d", dir)
	case !knownEnum(flowv1.Outcome_name, enum32(outcome)):
		return 0, reject(invalid, "unknown outcome %d", outcome)
	case !knownEnum(flowv1.TCPState_name, enum32(state)):
		return 0, reject(invalid, "unknown TCP state %d", state)
	case !knownEnum(flowv1.Family_name, enum32(family)):
		return 0, reject(invalid, "unknown family %d", family)
	case len(stateName) > 32:
		return 0, reject(flowv1.RejectReason_REJECT_REASON_TOO_LARGE, "close state name too long")
	}
	end, err := v.offset("end", prev, delta)
	if err != nil {
		return 0, err
	}
	return end, v.duration(dur)
}

// enum32 maps a varint to the int32 an enum field would hold (out-of-range values to -1).
func enum32(x uint64) int32 {
	if int64(x) > math.MaxInt32 || int64(x) < math.MinInt32 {
		return -1
	}
	return int32(x)
}

// consumeVarint is protowire.ConsumeVarint with an inlinable fast path for 1- and 2-byte
// values, which most record fields are.
func consumeVarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	if len(b) > 1 && b[1] < 0x80 {
		return uint64(b[0]&0x7f) | uint64(b[1])<<7, 2
	}
	return protowire.ConsumeVarint(b)
}
