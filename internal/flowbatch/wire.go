package flowbatch

import (
	"net/netip"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/internal/flow"
)

// The hot paths (records) are encoded by hand with protowire: the bytes are exactly what
// proto.MarshalOptions{Deterministic: true} produces for the same message (a test checks),
// without building a message per record.

// appendTag is protowire.AppendTag for field numbers below 2048, small enough to inline.
func appendTag(dst []byte, num protowire.Number, typ protowire.Type) []byte {
	t := uint64(num)<<3 | uint64(typ)
	if t < 0x80 {
		return append(dst, byte(t))
	}
	return append(dst, byte(t)|0x80, byte(t>>7))
}

// appendVarint is protowire.AppendVarint with a fast path for the small values most
// counters hold.
func appendVarint(dst []byte, v uint64) []byte {
	if v < 0x80 {
		return append(dst, byte(v))
	}
	if v < 0x4000 {
		return append(dst, byte(v)|0x80, byte(v>>7))
	}
	return protowire.AppendVarint(dst, v)
}

func appendUint(dst []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return dst
	}
	return appendVarint(appendTag(dst, num, protowire.VarintType), v)
}

func appendSint(dst []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return dst
	}
	return appendVarint(appendTag(dst, num, protowire.VarintType), protowire.EncodeZigZag(v))
}

func appendBool(dst []byte, num protowire.Number, v bool) []byte {
	if !v {
		return dst
	}
	return append(appendTag(dst, num, protowire.VarintType), 1)
}

func appendString(dst []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendString(dst, s)
}

func appendAddr(dst []byte, num protowire.Number, a netip.Addr) []byte {
	switch {
	case a.Is4():
		b := a.As4()
		return append(appendTag(dst, num, protowire.BytesType), 4, b[0], b[1], b[2], b[3])
	case a.Is6():
		b := a.As16()
		return append(append(appendTag(dst, num, protowire.BytesType), 16), b[:]...)
	}
	return dst
}

// maxEncodedDuration is the longest duration the encoder sends (the collector refuses
// batches with longer ones).
const maxEncodedDuration = int64(366 * 24 * time.Hour)

// scratch holds one record's fields while it is encoded. Every field but close_state_name
// fits: at most 218 bytes (11 varints of up to 10 bytes, 4 of up to 5, 3 addresses of up to
// 16, tags and small enums), so a uint8 index never wraps and needs no bounds check.
type scratch [256]byte

// put appends a varint at i.
func (s *scratch) put(i uint8, v uint64) uint8 {
	for v >= 0x80 {
		s[i] = byte(v) | 0x80
		v >>= 7
		i++
	}
	s[i] = byte(v)
	return i + 1
}

// uint1 appends a varint field with a one-byte tag (fields 1-15), nothing for 0.
func (s *scratch) uint1(i uint8, tag byte, v uint64) uint8 {
	if v == 0 {
		return i
	}
	s[i] = tag
	if v < 0x80 {
		s[i+1] = byte(v)
		return i + 2
	}
	return s.put(i+1, v)
}

// uint2 appends a varint field with a two-byte tag (fields 16-2047), nothing for 0.
func (s *scratch) uint2(i uint8, tag uint16, v uint64) uint8 {
	if v == 0 {
		return i
	}
	s[i], s[i+1] = byte(tag), byte(tag>>8)
	if v < 0x80 {
		s[i+2] = byte(v)
		return i + 3
	}
	return s.put(i+2, v)
}

// addr appends an address field (tag: one or two bytes, low byte first), nothing for the
// zero Addr.
func (s *scratch) addr(i uint8, tag uint16, a netip.Addr) uint8 {
	if !a.IsValid() {
		return i
	}
	s[i] = byte(tag)
	if tag > 0xff {
		i++
		s[i] = byte(tag >> 8)
	}
	if a.Is4() {
		b := a.As4()
		s[i+1] = 4
		s[i+2], s[i+3], s[i+4], s[i+5] = b[0], b[1], b[2], b[3]
		return i + 6
	}
	b := a.As16()
	s[i+1] = 16
	copy(s[i+2:i+18], b[:])
	return i + 18
}

// tag1 and tag2 are the wire tags of record fields (varints unless said otherwise).
func tag1(num protowire.Number, typ protowire.Type) byte { return byte(num<<3) | byte(typ) }
func tag2(num protowire.Number) uint16 {
	t := uint16(num) << 3
	return uint16(byte(t)|0x80) | t>>7<<8
}

// appendRecord appends r as Batch field 10; prev is the previous record's end. The record
// is laid out straight after room for its tag and a one-byte length, and moved only in the
// rare case it needs more (128 bytes or longer, or a close state name).
func appendRecord(dst []byte, r *flow.Record, origin uint32, prev int64) ([]byte, int64) {
	end := r.End.UnixNano()
	dur := end - r.Start.UnixNano()
	startKnown := r.StartKnown
	switch {
	case dur < 0:
		dur = 0 // a start after the end is a clock artefact: the flow took no time
	case dur > maxEncodedDuration:
		dur, startKnown = 0, false // no start (zero time) or an absurd one: say it is unknown
	}
	at := len(dst)
	dst = slices.Grow(dst, 2+len(scratch{}))
	s := (*scratch)(dst[at+2 : at+2+len(scratch{})])
	i, mid, name := s.record(r, origin, end-prev, uint64(dur), startKnown)
	if n := int(i); n < 0x80 && name == "" {
		dst = dst[:at+2+n]
		dst[at], dst[at+1] = tag1(10, protowire.BytesType), byte(n)
		return dst, end
	}
	var tmp scratch
	copy(tmp[:], s[:i])
	n := int(i)
	if name != "" {
		n += 2 + protowire.SizeVarint(uint64(len(name))) + len(name)
	}
	dst = protowire.AppendVarint(append(dst[:at], tag1(10, protowire.BytesType)), uint64(n))
	dst = append(dst, tmp[:mid]...)
	if name != "" {
		t := tag2(24) | uint16(protowire.BytesType)
		dst = protowire.AppendString(append(dst, byte(t), byte(t>>8)), name)
	}
	return append(dst, tmp[mid:i]...), end
}

// record lays out r's fields except close_state_name, which belongs at mid when name is set.
func (s *scratch) record(r *flow.Record, origin uint32, delta int64, dur uint64, startKnown bool) (i, mid uint8, name string) {
	i = s.uint1(0, tag1(1, protowire.VarintType), r.ConnID)
	i = s.addr(i, uint16(tag1(2, protowire.BytesType)), r.LocalAddr)
	i = s.uint1(i, tag1(3, protowire.VarintType), uint64(r.LocalPort))
	i = s.addr(i, uint16(tag1(4, protowire.BytesType)), r.RemoteAddr)
	i = s.uint1(i, tag1(5, protowire.VarintType), uint64(r.RemotePort))
	i = s.uint1(i, tag1(6, protowire.VarintType), uint64(directionPB(r.Direction)))
	i = s.uint1(i, tag1(7, protowire.VarintType), uint64(origin))
	i = s.uint1(i, tag1(8, protowire.VarintType), protowire.EncodeZigZag(delta))
	i = s.uint1(i, tag1(9, protowire.VarintType), dur)
	if r.Interim {
		s[i], s[i+1] = tag1(10, protowire.VarintType), 1
		i += 2
	}
	if !startKnown {
		s[i], s[i+1] = tag1(11, protowire.VarintType), 1
		i += 2
	}
	i = s.uint1(i, tag1(12, protowire.VarintType), r.BytesSent)
	i = s.uint1(i, tag1(13, protowire.VarintType), r.BytesReceived)
	i = s.uint1(i, tag1(14, protowire.VarintType), r.SegsSent)
	i = s.uint1(i, tag1(15, protowire.VarintType), r.SegsReceived)
	i = s.uint2(i, tag2(16), r.Retransmits)
	i = s.uint2(i, tag2(17), r.BytesRetransmitted)
	i = s.uint2(i, tag2(18), uint64(r.SrttUs))
	i = s.uint2(i, tag2(19), uint64(r.MinRttUs))
	i = s.uint2(i, tag2(20), uint64(r.ResetsSent))
	i = s.uint2(i, tag2(21), uint64(r.ResetsReceived))
	i = s.uint2(i, tag2(22), uint64(outcomePB(r.Outcome)))
	if r.CloseState != "" { // close_state_name (24) is the only field of unbounded length
		if st, ok := statePB(r.CloseState); ok {
			i = s.uint2(i, tag2(23), uint64(st))
		} else {
			name = r.CloseState
		}
	}
	mid = i
	i = s.uint2(i, tag2(25), uint64(familyToPB(r.Family, r.LocalAddr)))
	if r.NatRemoteAddr.IsValid() {
		i = s.addr(i, tag2(26)|uint16(protowire.BytesType), r.NatRemoteAddr)
		i = s.uint2(i, tag2(27), uint64(r.NatRemotePort))
	}
	return i, mid, name
}

// appendProto appends m as a length-delimited field.
func appendProto(dst []byte, num protowire.Number, m proto.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return dst, err
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendBytes(dst, b), nil
}
