package attribute

import "unsafe"

// peers interns the (exporter, node) pairs of held records, so that a record keeps a 4-byte
// id where the two strings took 32 bytes (a held record's bytes cost cache misses when Add
// writes it and when Flush reads it back). An id names its pair while records hold it: each
// held record counts once in its pair's refs (taken by id, given back by drop), and trim
// lets go of the pairs no record holds, whose ids are then reused. Id 0 names no pair.
//
// Finding a pair's id costs a few instructions a record: a slot chosen by where the strings'
// bytes are names the pair whose strings are those very bytes (pointers and lengths
// compared, where == on strings calls the runtime: the pair keeps its strings alive, so equal
// pointers are equal strings), else the map finds it, and the pair takes the caller's strings
// (equal ones), so that the caller's next records find it by their slot.
type peers struct {
	idList[peer]
	ids   map[peerKey]uint32
	slots [peerSlots]uint32
}

// peer is an interned pair and how many held records name it.
type peer struct {
	exporter, node string
	refs           int
}

type peerKey struct{ exporter, node string }

const peerBits, peerSlots = 11, 1 << peerBits

// is reports whether p's strings are these very strings.
func (p *peer) is(exporter, node string) bool {
	return unsafe.StringData(p.exporter) == unsafe.StringData(exporter) && len(p.exporter) == len(exporter) &&
		unsafe.StringData(p.node) == unsafe.StringData(node) && len(p.node) == len(node)
}

// peerSlotOf is the slot of an exporter string's bytes (an exporter's records name one node).
func peerSlotOf(exporter string) uint64 {
	return uint64(uintptr(unsafe.Pointer(unsafe.StringData(exporter)))) * 0x9e3779b97f4a7c15 >> (64 - peerBits)
}

// take returns the id of the pair (exporter, node) for one more held record when its slot
// finds it, else 0: then or takes it through the map. The two inline, where one function with
// the map's call did not (add then spilled its registers around the call). (A slot naming a
// released pair, or one whose id was reused, finds strings that are not these: validate
// refuses an empty exporter, and a pair's strings at these bytes are these strings.)
func (t *peers) take(exporter, node string) uint32 {
	if id := t.slots[peerSlotOf(exporter)]; int(id) < len(t.list) {
		if p := &t.list[id]; p.is(exporter, node) {
			p.refs++
			return id
		}
	}
	return 0
}

// or returns id, a pair take found, or when 0 the pair's id through the map (find).
func (t *peers) or(id uint32, exporter, node string) uint32 {
	if id != 0 {
		return id
	}
	return t.find(exporter, node)
}

// find is the way through the map: it interns a new pair, or gives a known one the
// caller's strings, and makes it the slot's.
func (t *peers) find(exporter, node string) uint32 {
	if t.ids == nil {
		t.ids = make(map[peerKey]uint32)
	}
	id, ok := t.ids[peerKey{exporter, node}]
	if !ok {
		id = t.newID()
		t.ids[peerKey{exporter, node}] = id
	}
	p := &t.list[id]
	p.exporter, p.node = exporter, node // (equal strings: the records holding the pair see no change)
	p.refs++
	t.slots[peerSlotOf(exporter)] = id
	return id
}

// drop gives back a held record's reference to pair id.
func (t *peers) drop(id uint32) { t.list[id].refs-- }

// exporter and node are pair id's strings.
func (t *peers) exporter(id uint32) string { return t.list[id].exporter }
func (t *peers) node(id uint32) string     { return t.list[id].node }

// trim releases the pairs no held record names: their ids are reused. (The slots naming them
// need no clearing: see take.)
func (t *peers) trim() {
	for id := 1; id < len(t.list); id++ {
		if p := &t.list[id]; p.refs == 0 && p.exporter != "" { // (validate refuses an empty exporter)
			delete(t.ids, peerKey{p.exporter, p.node})
			*p = peer{}
			t.release(uint32(id))
		}
	}
}
