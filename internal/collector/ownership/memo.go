package ownership

import (
	"encoding/binary"
	"math"
	"net/netip"

	"github.com/flowscope/flowscope/internal/flow"
)

// LookupMemo remembers the answers of a View's lookups: the holding window decides a second's
// records under a few Views, and their remote ends repeat (popular servers, the clients of
// one server). An answer is kept with the span of moments it holds for (every comparison of
// the moment with a threshold — a range's ends widened or shrunk by the skew, the horizon,
// the Kubernetes sync mark — narrows it), so a later lookup of the same address, port and
// finality at any moment of the span gets the same answer without reading the address's
// ranges. The store does not change while a View holds its read lock; a new View keeps the
// answers only if no write lock was taken since the memo's were made. Exact, and bounded
// (memoSlots slots).
type LookupMemo struct {
	slots   []lookupSlot
	epoch   uint32 // slots of another epoch are empty
	store   *Store // the store they were made of
	version uint64 // its version then
}

// lookupSlot is an answer in compact form (kind and reason as indexes).
type lookupSlot struct {
	key      ipKey
	port     uint16
	final    bool
	kind     uint8
	epoch    uint32
	lo, hi   int64
	ref      Ref
	src      Source
	reason   uint8
	pending  bool
	exporter bool
}

var reasons = []flow.Reason{"", flow.ReasonNoOwner, flow.ReasonGap, flow.ReasonConflict, flow.ReasonStale, flow.ReasonExternal}

func reasonIndex(r flow.Reason) (uint8, bool) {
	for i, x := range reasons {
		if x == r {
			return uint8(i), true
		}
	}
	return 0, false
}

// begin starts a View of s (its read lock held).
func (m *LookupMemo) begin(s *Store) {
	if m.slots == nil {
		m.slots = make([]lookupSlot, memoSlots)
	}
	if m.store == s && m.version == s.version && m.epoch != 0 {
		return // nothing changed since: the answers hold
	}
	m.store, m.version = s, s.version
	if m.epoch++; m.epoch == 0 { // wrapped: clear, so no slot of an old epoch looks current
		clear(m.slots)
		m.epoch = 1
	}
}

func (m *LookupMemo) slot(k ipKey, port uint16, final bool) *lookupSlot {
	x := binary.LittleEndian.Uint32(k[12:]) ^ binary.LittleEndian.Uint32(k[8:])*31 ^ uint32(port)*0x85ebca6b
	if final {
		x ^= 0x5bd1e995
	}
	return &m.slots[(x*0x9e3779b1)>>(32-memoBits)]
}

// has reports whether the memo holds an answer (not final) for the key and port, at some
// moment.
func (m *LookupMemo) has(k ipKey, port uint16) bool {
	sl := m.slot(k, port, false)
	return sl.epoch == m.epoch && sl.key == k && sl.port == port && !sl.final
}

func (m *LookupMemo) lookup(s *Store, addr netip.Addr, port uint16, at int64, final bool) Answer {
	k := keyOf(addr)
	sl := m.slot(k, port, final)
	if sl.epoch == m.epoch && sl.key == k && sl.port == port && sl.final == final && sl.lo <= at && at <= sl.hi {
		return Answer{Ref: sl.ref, Kind: kinds[sl.kind], Source: sl.src, Reason: reasons[sl.reason], Pending: sl.pending, Exporter: sl.exporter}
	}
	sp := span{lo: math.MinInt64, hi: math.MaxInt64}
	a := s.lookup(addr, port, at, final, &sp)
	if ri, ok := reasonIndex(a.Reason); ok {
		*sl = lookupSlot{key: k, port: port, final: final, kind: kindIndex(a.Kind), epoch: m.epoch, lo: sp.lo, hi: sp.hi,
			ref: a.Ref, src: a.Source, reason: ri, pending: a.Pending, exporter: a.Exporter}
	}
	return a
}
