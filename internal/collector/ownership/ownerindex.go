package ownership

import "math/bits"

// ownerIndex finds interned owners by their key's hash: an open-addressed table of owner ids,
// probed from the hash (which the owner's record keeps) and confirmed by comparing the key —
// 4 bytes a slot, at most half full, where a Go map of hashes took ≈ 30 bytes per owner.
type ownerIndex struct {
	ids   []ownerID // 0: empty; len a power of two (or 0)
	shift uint8     // 64 - log2(len(ids))
	n     int
}

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

// reindex indexes owner id (not indexed yet) under its record's hash.
func (t *owners) reindex(id ownerID) {
	x := &t.index
	if 2*(x.n+1) > len(x.ids) {
		old := x.ids
		x.ids, x.n = make([]ownerID, max(64, 2*len(old))), 0
		x.shift = uint8(64 - bits.Len(uint(len(x.ids)-1)))
		for _, o := range old {
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

// unindex removes an owner from the index (intern no longer finds it), moving later slots of
// its probe run back (no tombstones).
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
	x.ids[i] = 0
	x.n--
	for j := (i + 1) & mask; x.ids[j] != 0; j = (j + 1) & mask {
		h := x.home(t.hs[x.ids[j]])
		if (j-h)&mask >= (j-i)&mask { // h is not cyclically in (i, j]: the slot may move to i
			x.ids[i], x.ids[j] = x.ids[j], 0
			i = j
		}
	}
}
