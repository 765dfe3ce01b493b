package flowbatch

import (
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
		num, typ, n := consumeTag(data)
		if n < 0 || !num.IsValid() {
			return errMalformed
		}
		data = data[n:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, n = consumeVarint(data)
		case protowire.BytesType:
			b, n = consumeBytes(data)
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
