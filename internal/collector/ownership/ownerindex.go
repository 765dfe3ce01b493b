package ownership

import "math/bits"

// idSlots is the storage of an open-addressed table of owner ids (0: an empty slot), linear
// probing, at most half full, no tombstones: the owner index and the UID index.
type idSlots struct {
	ids   []ownerID // len a power of two (or 0)
	shift uint8     // the hash's width - log2(len(ids))
	n     int
}

// full reports whether one more id would fill the table more than half.
func (x *idSlots) full() bool { return 2*(x.n+1) > len(x.ids) }

// regrow replaces the storage by an empty one twice as large (for hashes of width bits) and
// returns the old one, whose ids the caller puts back.
func (x *idSlots) regrow(width int) []ownerID {
	old := x.ids
	x.ids, x.n = make([]ownerID, max(64, 2*len(old))), 0
	x.shift = uint8(width - bits.Len(uint(len(x.ids)-1)))
	return old
}

// removeAt empties slot i, moving later slots of its probe run back; home returns an id's
// home slot.
func (x *idSlots) removeAt(i int, home func(ownerID) int) {
	x.ids[i] = 0
	x.n--
	mask := len(x.ids) - 1
	for j := (i + 1) & mask; x.ids[j] != 0; j = (j + 1) & mask {
		h := home(x.ids[j])
		if (j-h)&mask >= (j-i)&mask { // h is not cyclically in (i, j]: the slot may move to i
			x.ids[i], x.ids[j] = x.ids[j], 0
			i = j
		}
	}
}

// ownerIndex finds interned owners by their key's hash: probed from the hash (which hs keeps
// by id) and confirmed by comparing the key — 4 bytes a slot, at most half full, where a Go
// map of hashes took ≈ 30 bytes per owner.
type ownerIndex struct{ idSlots }

func (x *ownerIndex) home(h uint64) int { return int(h >> x.shift) }

// findSlot returns the index slot of key k (h its hash) and whether it holds it; when it
// does not, the slot is the empty one that ends k's probe run.
func (t *owners) findSlot(k *ownerKey, h uint64) (int, bool) {
	x := &t.index
	mask := len(x.ids) - 1
	for i := x.home(h); ; i = (i + 1) & mask {
		id := x.ids[i]
		if id == 0 {
			return i, false
		}
		if t.hs[id] == h && t.keyOf(id) == *k {
			return i, true
		}
	}
}

// reindex indexes owner id (not indexed yet) under its hash.
func (t *owners) reindex(id ownerID) {
	x := &t.index
	if x.full() {
		for _, o := range x.regrow(64) {
			if o != 0 {
				t.reindex(o)
			}
		}
	}
	mask := len(x.ids) - 1
	i := x.home(t.hs[id])
	for x.ids[i] != 0 {
		i = (i + 1) & mask
	}
	x.ids[i] = id
	x.n++
}

// unindex removes an owner from the index: intern no longer finds it.
func (t *owners) unindex(id ownerID) {
	x := &t.index
	if x.n == 0 {
		return
	}
	mask := len(x.ids) - 1
	i := x.home(t.hs[id])
	for x.ids[i] != id {
		if x.ids[i] == 0 {
			return
		}
		i = (i + 1) & mask
	}
	x.removeAt(i, func(o ownerID) int { return x.home(t.hs[o]) })
}
