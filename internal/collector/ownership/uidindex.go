package ownership

import "math/bits"

// uidIndex maps pod UIDs to owners (Store.uids: the richest owner seen for each UID): an
// open-addressed table of owner ids, probed from the UID's fingerprint (which the owner's hot
// entry keeps) and confirmed by comparing the UID itself — 4 bytes a slot, at most half full,
// where a Go map of strings took ≈ 40 bytes per UID. An indexed owner must stay interned (the
// index holds a reference on it) and be removed before its last reference goes.
type uidIndex struct {
	o     *owners
	ids   []ownerID // 0: empty; len a power of two (or 0)
	shift uint8     // 32 - log2(len(ids))
	n     int
}

func (x *uidIndex) home(h uint32) int { return int(h >> x.shift) }

// find returns the slot of u and whether it holds it; when it does not, the slot is the
// empty one that ends u's probe run.
func (x *uidIndex) find(u *uidRef) (int, bool) {
	mask := len(x.ids) - 1
	for i := x.home(u.uh); ; i = (i + 1) & mask {
		id := x.ids[i]
		if id == 0 {
			return i, false
		}
		if x.o.uidIs(id, u) {
			return i, true
		}
	}
}

// get returns the owner indexed for uid.
func (x *uidIndex) get(uid string) (ownerID, bool) {
	if x.n == 0 || uid == "" {
		return 0, false
	}
	u := uidRefOf(uid)
	return x.getRef(&u)
}

// getRef is get for a prepared UID.
func (x *uidIndex) getRef(u *uidRef) (ownerID, bool) {
	if x.n == 0 || u.form == uidNone {
		return 0, false
	}
	i, ok := x.find(u)
	return x.ids[i], ok
}

// set indexes id (a pod owner with a UID) under its UID, replacing the owner indexed for it.
func (x *uidIndex) set(id ownerID) {
	if 2*(x.n+1) > len(x.ids) {
		x.grow()
	}
	u := x.o.uidRef(id)
	i, ok := x.find(&u)
	if !ok {
		x.n++
	}
	x.ids[i] = id
}

func (x *uidIndex) grow() {
	old := x.ids
	x.ids, x.n = make([]ownerID, max(64, 2*len(old))), 0
	x.shift = uint8(32 - bits.Len(uint(len(x.ids)-1)))
	for _, id := range old {
		if id != 0 {
			x.set(id)
		}
	}
}

// del removes uid, moving later slots of its probe run back (no tombstones).
func (x *uidIndex) del(uid string) {
	if x.n == 0 {
		return
	}
	u := uidRefOf(uid)
	i, ok := x.find(&u)
	if !ok {
		return
	}
	x.ids[i] = 0
	x.n--
	mask := len(x.ids) - 1
	for j := (i + 1) & mask; x.ids[j] != 0; j = (j + 1) & mask {
		h := x.home(x.o.hot[x.ids[j]].m.uh())
		if (j-h)&mask >= (j-i)&mask { // h is not cyclically in (i, j]: the slot may move to i
			x.ids[i], x.ids[j] = x.ids[j], 0
			i = j
		}
	}
}

func (x *uidIndex) len() int { return x.n }

// all returns the indexed owners (a copy: the caller may remove some).
func (x *uidIndex) all() []ownerID {
	out := make([]ownerID, 0, x.n)
	for _, id := range x.ids {
		if id != 0 {
			out = append(out, id)
		}
	}
	return out
}
