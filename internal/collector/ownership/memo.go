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
	keys6   []ipKey // the IPv6 keys of the slots that hold one (allocated on the first)
	ents    [warmedSlots]warmed
	n, hits int    // lookups and memo answers in the current window of memoWindow lookups
	skip    int    // lookups left that go to the store without the memo
	epoch   uint8  // slots of another epoch are empty
	store   *Store // the store they were made of
	version uint64 // its version then

	// services remembers the lookups of addresses that clients dialled and their nodes
	// translated (View.LookupServiceBrief): ClusterIPs, as a rule, few and looked up again
	// and again, where the peers of a large cluster's records repeat too rarely for this memo
	// (which then skips itself) and their answers would push the Services' out of it.
	services *LookupMemo
}

// lookupSlot is an answer in compact form, 32 bytes: an IPv4 address (or, for IPv6, a hash
// of the address, whose key keys6 holds), kind and reason as indexes, flags as bits.
type lookupSlot struct {
	a      uint32
	port   uint16
	epoch  uint8
	bits   uint8
	ref    Ref
	kind   uint8
	reason uint8
	src    Source
	lo, hi int64
}

const (
	slotPending  = ansPending
	slotExporter = ansExporter
	slotFinal    = 1 << 2
	slotV6       = 1 << 3
)

// reasons are the lookups' reasons by index (rNone, rNoOwner, ...).
var reasons = []flow.Reason{"", flow.ReasonNoOwner, flow.ReasonGap, flow.ReasonConflict, flow.ReasonStale, flow.ReasonExternal}

// begin starts a View of s (its read lock held).
func (m *LookupMemo) begin(s *Store) {
	if m.slots == nil {
		m.slots = make([]lookupSlot, memoSlots)
	}
	if m.services != nil {
		m.services.begin(s)
	}
	if m.store == s && m.version == s.version && m.epoch != 0 {
		return // nothing changed since: the answers hold
	}
	m.store, m.version = s, s.version
	if m.epoch++; m.epoch == 0 { // wrapped: clear, so no slot of an old epoch looks current
		clear(m.slots)
		clear(m.ents[:])
		m.epoch = 1
	}
}

// warmed is an IPv4 address's entry as the lookup warming found it (View.WarmStep): the
// lookup that follows skips the index. Valid in its epoch (the store unchanged). The warming
// notes a few chunks ahead of the lookups: 512 slots keep most notes until they are used.
type warmed struct {
	a     uint32
	epoch uint8
	e     *entry
}

const warmedBits, warmedSlots = 9, 1 << warmedBits

func warmedSlot(a uint32) int { return int((a * 0x9e3779b1) >> (32 - warmedBits)) }

// warmed returns the entry the warming found for the key, or nil.
func (m *LookupMemo) warmed(mk *memoKey) *entry {
	if w := &m.ents[warmedSlot(mk.a)]; !mk.v6 && w.a == mk.a && w.epoch == m.epoch {
		return w.e
	}
	return nil
}

func (m *LookupMemo) noteWarmed(mk *memoKey, e *entry) {
	if !mk.v6 {
		m.ents[warmedSlot(mk.a)] = warmed{a: mk.a, epoch: m.epoch, e: e}
	}
}

// memoKey is an address as the memo keys it: an IPv4 address itself (its bytes read little
// endian: the bits that vary most within a network are then the high ones, which the slot's
// multiplicative hash spreads best — measured: read big endian, a thousand pods' addresses
// under two ports took three times the misses), else a hash of its key.
type memoKey struct {
	a  uint32
	v6 bool // then the slots' keys6 holds the address's key
}

func memoKeyOf(addr netip.Addr) memoKey {
	if a, ok := addr4(addr); ok {
		return memoKey{a: a ^ v4Mix}
	}
	k := keyOf(addr)
	return memoKey{a: binary.LittleEndian.Uint32(k[12:]) ^ binary.LittleEndian.Uint32(k[8:])*31 ^ binary.LittleEndian.Uint32(k[4:])*17 ^ binary.LittleEndian.Uint32(k[:4])*7,
		v6: true}
}

// set returns the number of the first of the two slots (one cache line) that may hold the
// answer for the key, port and finality.
func (m *LookupMemo) set(mk *memoKey, port uint16, final bool) uint32 {
	x := mk.a ^ uint32(port)*0x85ebca6b
	if final {
		x ^= 0x5bd1e995
	}
	return (x * 0x9e3779b1) >> (32 - memoBits) &^ 1
}

// holds reports whether slot i holds an answer for the key, port and finality.
func (m *LookupMemo) holds(i uint32, mk *memoKey, addr netip.Addr, port uint16, final bool) bool {
	sl := &m.slots[i]
	bits := uint8(0)
	if final {
		bits = slotFinal
	}
	if mk.v6 {
		bits |= slotV6
	}
	if sl.epoch != m.epoch || sl.a != mk.a || sl.port != port || sl.bits&(slotFinal|slotV6) != bits {
		return false
	}
	return !mk.v6 || m.keys6[i] == keyOf(addr)
}

// find returns the slot holding an answer for the key, port and finality, or -1.
func (m *LookupMemo) find(mk *memoKey, addr netip.Addr, port uint16, final bool) (set uint32, i int) {
	set = m.set(mk, port, final)
	switch {
	case m.holds(set, mk, addr, port, final):
		return set, int(set)
	case m.holds(set+1, mk, addr, port, final):
		return set, int(set + 1)
	}
	return set, -1
}

// has reports whether the memo holds an answer (not final) for the key and port, at some
// moment.
func (m *LookupMemo) has(mk *memoKey, addr netip.Addr, port uint16) bool {
	if m.skip > 0 {
		return false
	}
	_, i := m.find(mk, addr, port, false)
	return i >= 0
}

// memoWindow: when the memo answers fewer than one in 16 of a window's lookups (each flush's
// addresses new to it: a large cluster's), the next 7 windows' lookups skip it — its slots'
// misses cost more than it saves — and the one after measures again.
const memoWindow = 4096

// count notes a lookup the memo answered (hit) or not.
func (m *LookupMemo) count(hit bool) {
	if hit {
		m.hits++
	}
	if m.n++; m.n == memoWindow {
		if m.hits*16 < m.n {
			m.skip = 7 * memoWindow
		}
		m.n, m.hits = 0, 0
	}
}

// serviceMemo returns m's memo of translated addresses (nil for a nil m), begun on m's store.
func (m *LookupMemo) serviceMemo() *LookupMemo {
	if m == nil {
		return nil
	}
	if m.services == nil {
		m.services = &LookupMemo{}
		m.services.begin(m.store)
	}
	return m.services
}

// lookup answers a View's lookup through the memo; a nil memo looks up directly.
func (m *LookupMemo) lookup(s *Store, addr netip.Addr, port uint16, at int64, final bool) Answer {
	a, kind := m.lookupAns(s, addr, port, at, final)
	return a.render(kind)
}

// lookupBrief is lookup answering in brief.
func (m *LookupMemo) lookupBrief(s *Store, addr netip.Addr, port uint16, at int64, final bool) Brief {
	a, kind := m.lookupAns(s, addr, port, at, final)
	return a.brief(kind)
}

// lookupAns is lookup answering in compact form, with the owner's kind (an index in kinds).
func (m *LookupMemo) lookupAns(s *Store, addr netip.Addr, port uint16, at int64, final bool) (ans, uint8) {
	if m == nil {
		// (no span: the answer is not memoized)
		return s.withKind(s.lookupEntry(addr, port, at, final, nil, nil))
	}
	mk := memoKeyOf(addr)
	if m.skip > 0 {
		m.skip--
		// (no span: the answer is not memoized)
		return s.withKind(s.lookupEntry(addr, port, at, final, nil, m.warmed(&mk)))
	}
	set, i := m.find(&mk, addr, port, final)
	if i >= 0 {
		if sl := &m.slots[i]; sl.lo <= at && at <= sl.hi {
			m.count(true)
			return ans{ref: ownerID(sl.ref), src: sl.src, reason: sl.reason, bits: sl.bits & (slotPending | slotExporter)}, sl.kind
		}
	}
	m.count(false)
	sp := span{lo: math.MinInt64, hi: math.MaxInt64}
	a := s.lookupEntry(addr, port, at, final, &sp, m.warmed(&mk))
	if i < 0 { // a slot of the set: one that holds nothing current, else either
		i = int(set)
		if m.slots[set].epoch == m.epoch && (m.slots[set+1].epoch != m.epoch || at&1 != 0) {
			i++
		}
	}
	bits := a.bits // ansPending and ansExporter are slotPending and slotExporter
	if final {
		bits |= slotFinal
	}
	if mk.v6 {
		bits |= slotV6
		if m.keys6 == nil {
			m.keys6 = make([]ipKey, memoSlots)
		}
		m.keys6[i] = keyOf(addr)
	}
	kind := uint8(0)
	if a.ref != 0 {
		kind = s.o.meta(a.ref).kind()
	}
	m.slots[i] = lookupSlot{a: mk.a, port: port, epoch: m.epoch, bits: bits, ref: Ref(a.ref), kind: kind, reason: a.reason, src: a.src, lo: sp.lo, hi: sp.hi}
	return a, kind
}
