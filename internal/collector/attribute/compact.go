package attribute

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
)

// The held record's compact fields. A held record is 128 bytes, two cache lines (it was 320,
// five, then 256, 192 and 152): Add writes every record and Flush reads it back seconds later,
// when the window's records are long out of the cache, and the window's size costs every
// record; records lie in memory in the order they are written and read, so a record costs its
// bytes, not whole lines. (Grown by 128 bytes that nothing reads or writes, a record cost the
// live benchmark 25–40 ns more at 1,000 pods and 50–60 at 100,000:
// docs/benchmarks/attribution-log.md, "A smaller held record".)

// v4word is IPv4 address a's four bytes as a held record keeps them inline (their
// little-endian load); v4addr is its inverse.
func v4word(a netip.Addr) uint32 {
	b := a.As4()
	return binary.LittleEndian.Uint32(b[:])
}

func v4addr(w uint32) netip.Addr {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], w)
	return netip.AddrFrom4(b)
}

// addrKey is an address's 16 bytes (an IPv4 address in its IPv4-mapped form: given mapped or
// not, one key) as two little-endian words: how held records keep addresses out of line (a
// record's whose addresses are not both IPv4, a translation's), compare and hash them.
// Whether an address was IPv4 is kept beside it (kept.meta, translation.is4). Zones are not
// kept: validate refuses zoned addresses (a socket's addresses carry none).
type addrKey struct{ lo, hi uint64 }

// keyFor is a's key; v4key is the key of the inline IPv4 address w (v4word), the same as
// keyFor gives the address.
func keyFor(a netip.Addr) addrKey {
	b := a.As16()
	return addrKey{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}

func v4key(w uint32) addrKey { return addrKey{hi: 0xffff<<16 | uint64(w)<<32} }

// addr is the address of key k, in its IPv4 form when is4.
func (k addrKey) addr(is4 bool) netip.Addr {
	if is4 {
		return v4addr(uint32(k.hi >> 32))
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], k.lo)
	binary.LittleEndian.PutUint64(b[8:], k.hi)
	return netip.AddrFrom16(b)
}

// meta packs a kept record's outcome (its low bits) with its addresses' forms and its side.
type meta uint8

const (
	outcomeBits meta = 7
	local4      meta = 1 << 3 // the local address is IPv4
	remote4     meta = 1 << 4 // the remote address is IPv4
	bigCounts   meta = 1 << 5 // the record's counters do not fit 32 bits: they are out of line (translations.counts)
	natSet      meta = 1 << 6 // the record carries a translated address
	localClient meta = 1 << 7 // the local end is the client (kept.client)
)

// outcomes are the outcomes a record may carry, by their code in kept.meta.
var outcomes = [...]flow.Outcome{"", flow.Open, flow.OK, flow.Refused, flow.Timeout, flow.Reset, flow.Aborted}

// outcomeCode returns o's code, false for an outcome the collector does not know (a switch:
// its comparisons with constants are inline loads, where a loop over outcomes calls memequal).
func outcomeCode(o flow.Outcome) (meta, bool) {
	switch o {
	case "":
		return 0, true
	case flow.Open:
		return 1, true
	case flow.OK:
		return 2, true
	case flow.Refused:
		return 3, true
	case flow.Timeout:
		return 4, true
	case flow.Reset:
		return 5, true
	case flow.Aborted:
		return 6, true
	}
	return 0, false
}

// zoned reports whether a carries a zone (an IPv4 address never does: no lookup).
func zoned(a netip.Addr) bool { return !a.Is4() && a.Zone() != "" }

// locations interns the time locations of held records' times (in practice one or two: a
// decoder's UTC or Local), so that a record keeps a byte for each where a pointer took eight.
// Code 0 is UTC; past maxLocations distinct locations a record's times are kept in UTC (the
// same moments, rendered in UTC).
type locations struct {
	list []*time.Location
}

const maxLocations = 256

// code returns l's code, interning it.
func (t *locations) code(l *time.Location) uint8 {
	if len(t.list) == 0 {
		t.list = append(t.list, time.UTC)
	}
	for i, x := range t.list {
		if x == l {
			return uint8(i)
		}
	}
	if len(t.list) == maxLocations {
		return 0
	}
	t.list = append(t.list, l)
	return uint8(len(t.list) - 1)
}

// at returns the location of code c.
func (t *locations) at(c uint8) *time.Location { return t.list[c] }
