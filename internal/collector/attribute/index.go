package attribute

// clientHash mixes a client address (as a key: an IPv4 address, given mapped or not, is one)
// and port into the byClient index key; records of keys that collide share a chain (matches
// compares the keys themselves).
func clientHash(addr addrKey, port uint16) uint64 {
	x := addr.lo*0x9e3779b97f4a7c15 ^ addr.hi*0xc2b2ae3d27d4eb4f ^ uint64(port)*0x165667b19e3779f9
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return x
}

// link pairs h with the other side's record of the same connection, if held. Records joined
// exactly leave the index (or never enter it): matches pairs no record twice, and an exact
// join is never undone, so no later record could join them. The others stay in it, a join
// through a Service address included (it may be undone).
func (a *Attributor) link(h *held) {
	k := clientHash(h.r.clientEnd(&a.nats))
	slot := a.byClient.find(k) // matches leaves the index alone: the slot stays h's
	first := a.byClient.slots[slot].h
	var loose, prev *held
	looseN := 0
	for c := first; c != nil; prev, c = c, c.sameClient {
		switch a.matches(h, c) {
		case exact:
			h.partner, c.partner = c, h
			a.unlink(slot, prev, c)
			return
		case viaVIP:
			loose = c
			looseN++
		}
	}
	if looseN == 1 { // an ambiguous join is no join
		h.partner, loose.partner = loose, h
		h.state, loose.state = h.state|stViaVIP, loose.state|stViaVIP
	}
	h.sameClient, h.state = first, h.state|stIndexed
	a.byClient.put(slot, k, h)
}

// ride reports whether h, joined to a partner and due at `due` (Unix nanoseconds; lag as dueAt
// takes it), is checked by its partner's wheel entry instead of one of its own, and marks it
// so: h joined exactly a record that no check has looked at yet, due in the same second. That
// check then decides both (check), and h takes no wheel entry: the full policy forces the
// pair through its partner's (forceSoonest).
func (a *Attributor) ride(h *held, due, lag int64) bool {
	p := h.partner
	if h.is(stViaVIP) || p.backoff != 0 || p.is(stDecided) || ceilSec(a.dueAt(p, lag)) != ceilSec(due) {
		return false
	}
	h.state |= stRides
	return true
}

// rider returns the record that rides h (ride), or nil.
func (h *held) rider() *held {
	if p := h.partner; p != nil && p.is(stRides) {
		return p
	}
	return nil
}

// unlink takes c, which follows prev (nil: c is the first) in the records at index slot,
// out of the index.
func (a *Attributor) unlink(slot uint64, prev, c *held) {
	switch {
	case prev != nil:
		prev.sameClient = c.sameClient
	case c.sameClient != nil:
		a.byClient.slots[slot].h = c.sameClient
	default:
		a.byClient.remove(slot)
	}
	c.sameClient, c.state = nil, c.state&^stIndexed
}

// unindex takes h out of the index, if it is in.
func (a *Attributor) unindex(h *held) {
	if !h.is(stIndexed) {
		return
	}
	slot := a.byClient.find(clientHash(h.r.clientEnd(&a.nats)))
	var prev *held
	for c := a.byClient.slots[slot].h; c != h; prev, c = c, c.sameClient {
	}
	a.unlink(slot, prev, h)
}

// clientIndex maps a client key hash (clientHash) to the newest held record of that client
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
