package attribute

import "unsafe"

// peers interns the (exporter, node) pairs of held records, so that a record keeps a 4-byte
// id where the two strings took 32 bytes (a held record's bytes cost cache misses when Add
// writes it and when Flush reads it back). An id names its pair while records hold it: each
// held record counts once in its pair's refs (taken by id, given back by drop), and trim
// lets go of the pairs no record holds, whose ids are then reused. Id 0 names no pair.
//
// Finding a pair's id costs a few instructions a record: the pair of the last record (a
// batch's records share it), else a slot chosen by where the strings' bytes are, which holds
// those very strings (a pointer and a length compared, where == on strings calls the
// runtime; the slot keeps its strings alive, so equal pointers are equal strings), else the
// map.
type peers struct {
	list  []peer
	ids   map[peerKey]uint32
	free  []uint32 // ids of released pairs
	slots *[peerSlots]peerSlot
	last  peerSlot // the last pair found
}

// peer is an interned pair and how many held records name it.
type peer struct {
	exporter, node string
	refs           int
}

type peerKey struct{ exporter, node string }

// peerSlot remembers a pair's id by the strings a caller gave.
type peerSlot struct {
	exporter, node string
	id             uint32
}

const peerBits, peerSlots = 10, 1 << peerBits

// same reports whether s holds these very strings (and an id).
func (s *peerSlot) same(exporter, node string) bool {
	return unsafe.StringData(s.exporter) == unsafe.StringData(exporter) && len(s.exporter) == len(exporter) &&
		unsafe.StringData(s.node) == unsafe.StringData(node) && len(s.node) == len(node) && s.id != 0
}

func peerSlotOf(exporter, node string) uint64 {
	x := uint64(uintptr(unsafe.Pointer(unsafe.StringData(exporter)))) ^ uint64(uintptr(unsafe.Pointer(unsafe.StringData(node))))*0xc2b2ae3d27d4eb4f
	return x * 0x9e3779b97f4a7c15 >> (64 - peerBits)
}

// take returns the id of the pair (exporter, node) for one more held record.
func (t *peers) take(exporter, node string) uint32 {
	id := t.last.id
	if !t.last.same(exporter, node) {
		id = t.find(exporter, node)
	}
	t.list[id].refs++
	return id
}

// find returns the id of the pair, interning it when new, and remembers it (the last pair
// and its slot).
func (t *peers) find(exporter, node string) uint32 {
	if t.slots == nil {
		t.slots = new([peerSlots]peerSlot)
		t.ids = make(map[peerKey]uint32)
		t.list = make([]peer, 1, 64) // id 0: no pair
	}
	sl := &t.slots[peerSlotOf(exporter, node)]
	if !sl.same(exporter, node) {
		id, ok := t.ids[peerKey{exporter, node}]
		if !ok {
			if n := len(t.free); n > 0 {
				id, t.free = t.free[n-1], t.free[:n-1]
			} else {
				id = uint32(len(t.list))
				t.list = append(t.list, peer{})
			}
			t.list[id] = peer{exporter: exporter, node: node}
			t.ids[peerKey{exporter, node}] = id
		}
		*sl = peerSlot{exporter: exporter, node: node, id: id}
	}
	t.last = *sl
	return sl.id
}

// drop gives back a held record's reference to pair id.
func (t *peers) drop(id uint32) { t.list[id].refs-- }

// exporter and node are pair id's strings.
func (t *peers) exporter(id uint32) string { return t.list[id].exporter }
func (t *peers) node(id uint32) string     { return t.list[id].node }

// trim releases the pairs no held record names (their ids are reused), and the slots that
// remember them.
func (t *peers) trim() {
	released := false
	for id := 1; id < len(t.list); id++ {
		if p := &t.list[id]; p.refs == 0 && p.exporter != "" { // (validate refuses an empty exporter)
			delete(t.ids, peerKey{p.exporter, p.node})
			*p = peer{}
			t.free = append(t.free, uint32(id))
			released = true
		}
	}
	if !released {
		return
	}
	for i := range t.slots {
		if s := &t.slots[i]; s.id != 0 && t.list[s.id].exporter == "" {
			*s = peerSlot{}
		}
	}
	if t.list[t.last.id].exporter == "" {
		t.last = peerSlot{}
	}
}
