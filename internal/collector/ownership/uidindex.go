package ownership

// uidIndex maps pod UIDs to owners (Store.uids: the richest owner seen for each UID): an
// open-addressed table of owner ids, probed from the UID's fingerprint (which the owner's hot
// entry keeps) and confirmed by comparing the UID itself — 4 bytes a slot, at most half full,
// where a Go map of strings took ≈ 40 bytes per UID. An indexed owner must stay interned (the
// index holds a reference on it) and be removed before its last reference goes.
type uidIndex struct {
	idSlots // (fingerprints are 32 bits wide)
	o       *owners
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
	if x.full() {
		for _, o := range x.regrow(32) {
			if o != 0 {
				x.set(o)
			}
		}
	}
	u := x.o.uidRef(id)
	i, ok := x.find(&u)
	if !ok {
		x.n++
	} else {
		x.o.hot[x.ids[i]].m &^= metaIndexed
	}
	x.ids[i] = id
	x.o.hot[id].m |= metaIndexed
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
	x.o.hot[x.ids[i]].m &^= metaIndexed
	x.removeAt(i, func(o ownerID) int { return x.home(x.o.hot[o].m.uh()) })
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
