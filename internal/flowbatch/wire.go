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

// appendMessage appends a length-delimited field whose content fill appends.
func appendMessage(dst []byte, num protowire.Number, fill func([]byte) []byte) []byte {
	dst = slices.Grow(appendTag(dst, num, protowire.BytesType), 192)
	lenAt := len(dst)
	dst = append(dst, 0) // one byte of length: enough below 128 bytes, moved otherwise
	start := len(dst)
	dst = fill(dst)
	n := len(dst) - start
	if n < 128 {
		dst[lenAt] = byte(n)
		return dst
	}
	extra := protowire.SizeVarint(uint64(n)) - 1
	dst = append(dst, make([]byte, extra)...)
	copy(dst[start+extra:], dst[start:start+n])
	protowire.AppendVarint(dst[:lenAt], uint64(n))
	return dst
}

// maxEncodedDuration is the longest duration the encoder sends (the collector refuses
// batches with longer ones).
const maxEncodedDuration = int64(366 * 24 * time.Hour)

// appendRecord appends r as Batch field 10; prev is the previous record's end.
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
	dst = appendMessage(dst, 10, func(d []byte) []byte {
		d = appendUint(d, 1, r.ConnID)
		d = appendAddr(d, 2, r.LocalAddr)
		d = appendUint(d, 3, uint64(r.LocalPort))
		d = appendAddr(d, 4, r.RemoteAddr)
		d = appendUint(d, 5, uint64(r.RemotePort))
		d = appendUint(d, 6, uint64(directionPB(r.Direction)))
		d = appendUint(d, 7, uint64(origin))
		d = appendSint(d, 8, end-prev)
		d = appendUint(d, 9, uint64(dur))
		d = appendBool(d, 10, r.Interim)
		d = appendBool(d, 11, !startKnown)
		d = appendUint(d, 12, r.BytesSent)
		d = appendUint(d, 13, r.BytesReceived)
		d = appendUint(d, 14, r.SegsSent)
		d = appendUint(d, 15, r.SegsReceived)
		d = appendUint(d, 16, r.Retransmits)
		d = appendUint(d, 17, r.BytesRetransmitted)
		d = appendUint(d, 18, uint64(r.SrttUs))
		d = appendUint(d, 19, uint64(r.MinRttUs))
		d = appendUint(d, 20, uint64(r.ResetsSent))
		d = appendUint(d, 21, uint64(r.ResetsReceived))
		d = appendUint(d, 22, uint64(outcomePB(r.Outcome)))
		if r.CloseState != "" {
			if s, ok := statePB(r.CloseState); ok {
				d = appendUint(d, 23, uint64(s))
			} else {
				d = appendString(d, 24, r.CloseState)
			}
		}
		d = appendUint(d, 25, uint64(familyToPB(r.Family, r.LocalAddr)))
		if r.NatRemoteAddr.IsValid() {
			d = appendAddr(d, 26, r.NatRemoteAddr)
			d = appendUint(d, 27, uint64(r.NatRemotePort))
		}
		return d
	})
	return dst, end
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
