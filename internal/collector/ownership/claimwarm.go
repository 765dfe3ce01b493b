package ownership

import "unsafe"

// Warming a call's claims as a pipeline: what a claim reads in a large store is a chain of
// dependent misses — the block table's slot, the entry (its ranges inline), the owners' hot
// entries, the UIDs' bytes. The pipeline takes each chunk one link further per step, four
// chunks at a time: a link reads what the step before prefetched and prefetches the next
// line. Prefetches hold up no instruction (a load that misses does, once the reorder buffer is
// full), so the chain's misses overlap with the claims stored meanwhile.

// warmStage is one chunk's progress through the pipeline.
type warmStage struct {
	pods   []LocalPod
	slots  [warmChunk]*uint32 // the index slots of IPv4 claims' addresses (nil: none, or IPv6)
	es     [warmChunk]*entry  // the claims' entries (nil: none, or the memo answers the claim)
	at     uint64             // Store.compactions when the slots were found
	moves  uint64             // the block table's moves then (a slot may since hold another block)
	owners [warmChunk * 2]ownerID
	nOwn   int
}

const warmStages = 4

type claimPipeline struct {
	st [warmStages]warmStage
	pf prefetches
}

// prefetches collects the lines a pipeline step wants, which one prefetchAll call then asks
// for: a call into assembly spills the caller's live values, so a call a line cost more than
// the prefetches themselves. A step of either pipeline wants at most 9 lines an address.
type prefetches struct {
	n int
	p [warmChunk * 10]uintptr
}

func (l *prefetches) add(p uintptr) {
	l.p[l.n] = p
	l.n++
}

func (l *prefetches) add2(p, q uintptr) {
	l.p[l.n], l.p[l.n+1] = p, q
	l.n += 2
}

// issue asks for the lines collected, and empties the list.
func (l *prefetches) issue() {
	prefetchAll(l.p[:l.n])
	l.n = 0
}

// slotOf returns the index slot of an IPv4 address (nil when its block does not exist).
func (m *addrMap) slotOf(a uint32) *uint32 {
	j := m.blocks.slot(a >> blockBits)
	if j < 0 {
		return nil
	}
	return &m.blocks.idx[j][a&(1<<blockBits-1)]
}

// findSlots is the first link: the index slots of the chunk's addresses (the block table's
// prefixes are in the cache; the slots' lines are loaded). A slot is read again by the next
// link, after claims that may have grown the table: an old table's slot still holds the entry
// numbers it held (entries are freed only by compactions), or 0; observeWarmed uses what was
// found only when neither a compaction nor a move happened since.
func (s *Store) findSlots(w *warmStage, pods []LocalPod, pf *prefetches) {
	w.pods, w.at, w.moves, w.nOwn = pods, s.compactions, s.ips.blocks.moves, 0
	for i := range pods {
		w.slots[i], w.es[i] = nil, nil
		a := pods[i].Addr
		if u := pods[i].UID; len(u) > 0 { // (its first and last lines: a UUID may span two)
			p := uintptr(unsafe.Pointer(unsafe.StringData(u)))
			pf.add2(p, p+uintptr(len(u)-1))
		}
		if !a.Is4() {
			if !a.IsValid() {
				continue
			}
			w.es[i] = s.ips.get(keyOf(a)) // (a map: not pipelined)
			continue
		}
		if sl := s.ips.slotOf(v4(a)); sl != nil {
			w.slots[i] = sl
			pf.add(uintptr(unsafe.Pointer(sl)))
		}
	}
}

// loadEntries is the second link: the entries.
func (s *Store) loadEntries(w *warmStage, pf *prefetches) {
	for i := range w.pods {
		sl := w.slots[i]
		if sl == nil || *sl == 0 {
			continue
		}
		if !s.memo.off {
			if a, _ := addr4(w.pods[i].Addr); s.memo.slot(a).epoch == s.memo.epoch && s.memo.slot(a).a == a {
				continue // the memo may answer it
			}
		}
		e := s.ips.entry(*sl - 1)
		w.es[i] = e
		pf.add(uintptr(unsafe.Pointer(e)))
	}
}

// loadOwners is the third link: the entries' first ranges' owners' hot entries.
func (s *Store) loadOwners(w *warmStage, pf *prefetches) {
	for _, e := range w.es[:len(w.pods)] {
		if e == nil {
			continue
		}
		if e.n >= 3 { // its third range is read in the entry's second line
			pf.add(uintptr(unsafe.Pointer(e)) + 64)
		}
		a, b := e.leadOwners()
		if a != 0 {
			w.owners[w.nOwn] = a
			w.nOwn++
			pf.add(s.o.hotAt(a))
		}
		if b != 0 {
			w.owners[w.nOwn] = b
			w.nOwn++
			pf.add(s.o.hotAt(b))
		}
	}
}

// loadUIDs is the last link: the owners' UID bytes where a UID has no inline key.
func (s *Store) loadUIDs(w *warmStage, pf *prefetches) {
	for _, o := range w.owners[:w.nOwn] {
		if s.o.hot[o].m.form() == uidLong {
			pf.add(uintptr(unsafe.Pointer(unsafe.StringData(s.o.uid(o)))))
		}
	}
}

// step advances the pipeline by one step for chunk number c of pods (chunks of warmChunk): c
// enters it, c-1 .. c-3 move on. It returns the stage of chunk c-3, ready (nil before).
func (s *Store) step(p *claimPipeline, pods []LocalPod, c int) *warmStage {
	chunks := (len(pods) + warmChunk - 1) / warmChunk
	if c < chunks {
		s.findSlots(&p.st[c%warmStages], pods[c*warmChunk:min((c+1)*warmChunk, len(pods))], &p.pf)
	}
	if d := c - 1; d >= 0 && d < chunks {
		s.loadEntries(&p.st[d%warmStages], &p.pf)
	}
	if d := c - 2; d >= 0 && d < chunks {
		s.loadOwners(&p.st[d%warmStages], &p.pf)
	}
	var w *warmStage
	if d := c - 3; d >= 0 && d < chunks {
		w = &p.st[d%warmStages]
		s.loadUIDs(w, &p.pf)
	}
	p.pf.issue()
	return w
}
