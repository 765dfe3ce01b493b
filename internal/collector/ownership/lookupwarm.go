package ownership

import (
	"net/netip"
	"unsafe"
)

// Warming lookups as a pipeline, as claims are (claimwarm.go): a lookup's misses are a chain —
// the address's index slot, its entry, the owners of its ranges — and the holding window
// checks records in chunks. Each WarmStep takes one chunk a link further with prefetches,
// which hold up nothing, so a chunk's misses overlap the checks of the chunk before it.

// LookupWarmer is the pipeline's state: the last lookupStages chunks' progress.
type LookupWarmer struct {
	st [lookupStages]lookupStage
	pf prefetches
}

const lookupStages = 3

// lookupStage is one chunk's progress: what its first link found, and the store's version
// then (a later link uses it only while the store is unchanged).
type lookupStage struct {
	n       int
	version uint64
	mks     [warmChunk]memoKey
	slots   [warmChunk]*uint32 // IPv4 addresses' index slots (nil: none, the memo answers, or IPv6)
	es      [warmChunk]*entry
}

// WarmStep enters chunk c — the addresses and ports its records will look up (at most
// warmChunk), the owners it will render — into the pipeline, and takes chunks c-1 and c-2 one
// link further. A chunk is warm for its lookups after the step of chunk c+2; the caller steps
// through c = 0, 1, 2, … (an empty chunk past the end still moves the others on).
func (v View) WarmStep(w *LookupWarmer, c int, addrs []netip.Addr, ports []uint16, owners []Ref) {
	v.warmSlots(&w.st[c%lookupStages], addrs, ports, &w.pf)
	for _, r := range owners[:min(len(owners), warmChunk)] { // its hot entry (Named) and its render record (FillEndpoint)
		o := ownerID(r)
		w.pf.add2(v.s.o.hotAt(o), v.s.o.recAt(o))
	}
	if c >= 1 {
		v.warmLookupEntries(&w.st[(c-1)%lookupStages], &w.pf)
	}
	if c >= 2 {
		v.warmRangeOwners(&w.st[(c-2)%lookupStages], &w.pf)
	}
	w.pf.issue()
}

// warmSlots is the first link: the addresses' index slots (an IPv6 address's entry, found in
// its map, at once).
func (v View) warmSlots(st *lookupStage, addrs []netip.Addr, ports []uint16, pf *prefetches) {
	st.n, st.version = min(len(addrs), warmChunk), v.s.version
	for i, a := range addrs[:st.n] {
		st.slots[i], st.es[i] = nil, nil
		mk := memoKeyOf(a)
		st.mks[i] = mk
		if v.memo != nil && v.memo.has(&mk, a, ports[i]) {
			continue
		}
		if a.Is4() {
			if sl := v.s.ips.slotOf(v4(a)); sl != nil {
				st.slots[i] = sl
				pf.add(uintptr(unsafe.Pointer(sl)))
			}
		} else if e := v.s.ips.getAddr(a); e != nil {
			st.es[i] = e
			pf.add(uintptr(unsafe.Pointer(e)))
		}
	}
}

// warmLookupEntries is the second link: the entries, which the View's memo hands to the
// lookups (no second probe of the index).
func (v View) warmLookupEntries(st *lookupStage, pf *prefetches) {
	if st.version != v.s.version {
		st.n = 0 // the store changed since the slots were found
		return
	}
	for i := range st.n {
		if sl := st.slots[i]; sl != nil && *sl != 0 {
			st.es[i] = v.s.ips.entry(*sl - 1)
		}
		if e := st.es[i]; e != nil {
			pf.add(uintptr(unsafe.Pointer(e)))
			if v.memo != nil {
				v.memo.noteWarmed(&st.mks[i], e)
			}
		}
	}
}

// warmRangeOwners is the last link: the distinct owners of the entries' first two ranges,
// their hot entries and render records.
func (v View) warmRangeOwners(st *lookupStage, pf *prefetches) {
	if st.version != v.s.version {
		return
	}
	for _, e := range st.es[:st.n] {
		if e == nil {
			continue
		}
		a, b := e.leadOwners()
		if a != 0 {
			pf.add2(v.s.o.hotAt(a), v.s.o.recAt(a))
		}
		if b != 0 {
			pf.add2(v.s.o.hotAt(b), v.s.o.recAt(b))
		}
	}
}
