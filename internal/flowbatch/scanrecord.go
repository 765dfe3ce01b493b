package flowbatch

import (
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
)

// recordWireType is the wire type of each FlowRecord field (1-27): addresses and the close
// state name are length-delimited, everything else is a varint.
var recordWireType = [28]protowire.Type{
	0: -1, 2: protowire.BytesType, 4: protowire.BytesType, 24: protowire.BytesType, 26: protowire.BytesType,
}

// scanRecord checks one FlowRecord in place (validateRecord's rules) and returns its end.
// Varint fields land in vals by field number; the common one- and two-byte tags and values
// are read inline.
func scanRecord(b []byte, origins int, prev int64, v timeCheck) (int64, error) {
	var (
		vals                          [28]uint64
		local, remote, nat, stateName []byte
	)
	for len(b) > 0 {
		var t uint64
		switch {
		case b[0] < 0x80:
			t, b = uint64(b[0]), b[1:]
		case len(b) > 1 && b[1] < 0x80:
			t, b = uint64(b[0]&0x7f)|uint64(b[1])<<7, b[2:]
		default:
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				return 0, errMalformed
			}
			t, b = uint64(num)<<3|uint64(typ), b[n:]
		}
		num, typ := t>>3, protowire.Type(t&7)
		if num == 0 {
			return 0, errMalformed
		}
		if num >= uint64(len(recordWireType)) { // unknown field: skip it
			m := protowire.ConsumeFieldValue(protowire.Number(num), typ, b)
			if m < 0 {
				return 0, errMalformed
			}
			b = b[m:]
			continue
		}
		if typ != recordWireType[num] {
			return 0, errMalformed // a known field with the wrong wire type
		}
		if typ == protowire.VarintType {
			if len(b) > 0 && b[0] < 0x80 {
				vals[num], b = uint64(b[0]), b[1:]
				continue
			}
			x, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0, errMalformed
			}
			vals[num], b = x, b[m:]
			continue
		}
		x, m := consumeBytes(b)
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
		}
	}
	return checkRecord(&vals, local, remote, nat, stateName, origins, prev, v)
}

// checkRecord applies validateRecord's rules to a scanned record.
func checkRecord(vals *[28]uint64, local, remote, nat, stateName []byte, origins int, prev int64, v timeCheck) (int64, error) {
	invalid := flowv1.RejectReason_REJECT_REASON_INVALID
	dir, origin := vals[6], vals[7]
	switch {
	case !validAddr(local) || !validAddr(remote):
		return 0, reject(invalid, "addresses must be 4 or 16 bytes")
	case len(nat) != 0 && !validAddr(nat):
		return 0, reject(invalid, "NAT address must be 4 or 16 bytes")
	case vals[3] > math.MaxUint16 || vals[5] > math.MaxUint16 || vals[27] > math.MaxUint16:
		return 0, reject(invalid, "port out of range")
	case origin >= uint64(origins):
		return 0, reject(invalid, "workload index %d out of %d", origin, origins)
	case dir == 0 || !directions.has(dir):
		return 0, reject(invalid, "unknown direction %d", dir)
	case !outcomes.has(vals[22]):
		return 0, reject(invalid, "unknown outcome %d", vals[22])
	case !states.has(vals[23]):
		return 0, reject(invalid, "unknown TCP state %d", vals[23])
	case !families.has(vals[25]):
		return 0, reject(invalid, "unknown family %d", vals[25])
	case len(stateName) > 32:
		return 0, reject(flowv1.RejectReason_REJECT_REASON_TOO_LARGE, "close state name too long")
	}
	end, err := v.offset("end", prev, protowire.DecodeZigZag(vals[8]))
	if err != nil {
		return 0, err
	}
	return end, v.duration(vals[9])
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

// consumeTag is protowire.ConsumeTag with an inlinable fast path for the one- and two-byte
// tags of fields 1-2047 (an invalid number is for the caller to refuse, as with ConsumeTag's
// n < 0).
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return protowire.Number(b[0] >> 3), protowire.Type(b[0] & 7), 1
	}
	if len(b) > 1 && b[1] < 0x80 {
		t := uint64(b[0]&0x7f) | uint64(b[1])<<7
		return protowire.Number(t >> 3), protowire.Type(t & 7), 2
	}
	return protowire.ConsumeTag(b)
}

// consumeBytes is protowire.ConsumeBytes with an inlinable fast path for lengths below 128.
func consumeBytes(b []byte) ([]byte, int) {
	if len(b) > 0 && b[0] < 0x80 {
		n := int(b[0])
		if n >= len(b) {
			return nil, -1
		}
		return b[1 : 1+n], 1 + n
	}
	return protowire.ConsumeBytes(b)
}

// enumSet tells whether a varint is a value of an enum, with a table for the small values
// every enum here has instead of a map lookup.
type enumSet struct {
	small [32]bool
	names map[int32]string
}

func newEnumSet(names map[int32]string) *enumSet {
	s := &enumSet{names: names}
	for v := range names {
		if v >= 0 && int(v) < len(s.small) {
			s.small[v] = true
		}
	}
	return s
}

func (s *enumSet) has(x uint64) bool {
	if x < uint64(len(s.small)) {
		return s.small[x]
	}
	return knownEnum(s.names, enum32(x))
}

var (
	directions = newEnumSet(flowv1.Direction_name)
	outcomes   = newEnumSet(flowv1.Outcome_name)
	states     = newEnumSet(flowv1.TCPState_name)
	families   = newEnumSet(flowv1.Family_name)
)
