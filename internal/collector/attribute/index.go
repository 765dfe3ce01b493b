package attribute

// clientIndex maps a client key hash (held.ckh) to the newest held record of that client
// address and port: an open-addressed table with linear probing and backward-shift deletion,
// one probe sequence per operation where a Go map takes two (a read, then a write).
type clientIndex struct {
	slots []clientSlot // power of two; h == nil: empty
	n     int
	peak  int // the most keys held since the last shrink
}

type clientSlot struct {
	key uint64
	h   *held
}

const minIndexSlots = 1024

func (x *clientIndex) mask() uint64 { return uint64(len(x.slots) - 1) }

// find returns the slot of key, or the empty slot where it would go.
func (x *clientIndex) find(key uint64) uint64 {
	if x.slots == nil {
		x.slots = make([]clientSlot, minIndexSlots)
	}
	m := x.mask()
	for i := key & m; ; i = (i + 1) & m {
		if s := &x.slots[i]; s.h == nil || s.key == key {
			return i
		}
	}
}

// put makes h (not nil) the newest record of key at slot i, found by find(key).
func (x *clientIndex) put(i, key uint64, h *held) {
	s := &x.slots[i]
	empty := s.h == nil
	s.key, s.h = key, h
	if empty {
		x.n++
		x.peak = max(x.peak, x.n)
		if x.n*2 > len(x.slots) {
			x.resize(len(x.slots) * 2)
		}
	}
}

// remove empties slot i (which holds a key).
func (x *clientIndex) remove(i uint64) {
	x.n--
	m := x.mask()
	for j := (i + 1) & m; x.slots[j].h != nil; j = (j + 1) & m { // backward shift: no tombstones
		if home := x.slots[j].key & m; (j-home)&m >= (j-i)&m {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = clientSlot{}
}

func (x *clientIndex) resize(n int) {
	old := x.slots
	x.slots = make([]clientSlot, n)
	m := x.mask()
	for _, s := range old {
		if s.h == nil {
			continue
		}
		i := s.key & m
		for x.slots[i].h != nil {
			i = (i + 1) & m
		}
		x.slots[i] = s
	}
}

// shrink gives back a table far larger than it needed since the last shrink (after a burst).
func (x *clientIndex) shrink() {
	if n := len(x.slots); n > minIndexSlots && x.peak*8 < n {
		x.resize(max(minIndexSlots, n/4))
	}
	x.peak = x.n
}
