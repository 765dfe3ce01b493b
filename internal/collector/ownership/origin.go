package ownership

import (
	"math"
	"unsafe"
)

// Origins are the exporters that claim ownership: each has an index, and the latest moment it
// claimed anything (Store.originSeen), which lookups compare with the moment they attribute.

// seen notes that exporter origin claimed something up to `to`, and returns its index.
// Its fast path, which the claims' functions inline: the slot of the name's bytes holds those
// very bytes (a pointer and a length compared, where == on strings calls the runtime).
func (s *Store) seen(origin string, to int64) uint16 {
	var oi uint16
	if sl := s.originSlotFor(origin); sl != nil && unsafe.StringData(sl.name) == unsafe.StringData(origin) && len(sl.name) == len(origin) && sl.i != 0 {
		oi = sl.i
	} else {
		oi = s.originSlow(origin)
	}
	s.originSeen[oi] = max(s.originSeen[oi], to)
	return oi
}

// originSlot remembers an origin's index by its name string, in a slot chosen by where the
// string's bytes are: the claims of a batch share their exporter's name string, which then
// finds its slot holding the same bytes, skipping the map.
type originSlot struct {
	name string
	i    uint16
}

const originBits, originSlots = 12, 1 << originBits

// originSlotFor is the slot of name's bytes (nil before the first origin).
func (s *Store) originSlotFor(name string) *originSlot {
	if s.origins == nil {
		return nil
	}
	return &s.origins[originSlotOf(name)]
}

func originSlotOf(name string) uint64 {
	return uint64(uintptr(unsafe.Pointer(unsafe.StringData(name)))) * 0x9e3779b97f4a7c15 >> (64 - originBits)
}

// originSlow returns the index of origin name through the map (the name's slot holds another
// string), adding the origin when it is new.
func (s *Store) originSlow(name string) uint16 {
	if s.origins == nil {
		s.origins = new([originSlots]originSlot)
	}
	sl := &s.origins[originSlotOf(name)]
	if i, ok := s.originIdx[name]; ok {
		*sl = originSlot{name: name, i: i}
		return i
	}
	if len(s.originSeen) >= math.MaxUint16 {
		return 0
	}
	i := uint16(len(s.originSeen))
	s.originIdx[name] = i
	s.originSeen = append(s.originSeen, 0)
	return i
}
