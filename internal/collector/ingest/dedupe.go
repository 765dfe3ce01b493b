package ingest

import (
	"container/list"
	"sync"
)

// window is how many sequence numbers below the highest one seen are remembered per
// (exporter, boot); an older one cannot be told from a duplicate and is rejected as stale.
const window = 1 << 16

type bootKey struct{ exporter, boot string }

// seqState remembers which sequence numbers of one (exporter, boot) were stored.
type seqState struct {
	min, max uint64
	count    uint64 // distinct sequence numbers stored
	bits     [window / 64]uint64
	pending  map[uint64]struct{} // being stored right now
	elem     *list.Element
}

func (s *seqState) has(seq uint64) bool {
	return s.count > 0 && seq <= s.max && seq+window > s.max && s.bits[(seq/64)%(window/64)]&(1<<(seq%64)) != 0
}

// missing is how many sequence numbers between the lowest and highest stored never arrived.
func (s *seqState) missing() uint64 {
	if s.count == 0 {
		return 0
	}
	return s.max - s.min + 1 - s.count
}

func (s *seqState) add(seq uint64) {
	switch {
	case s.count == 0:
		s.min, s.max = seq, seq
	case seq > s.max && seq-s.max >= window:
		s.bits = [window / 64]uint64{}
		s.max = seq
	case seq > s.max:
		for m := s.max + 1; m <= seq; m++ { // clear the bits that re-enter the window
			s.bits[(m/64)%(window/64)] &^= 1 << (m % 64)
		}
		s.max = seq
	}
	if seq < s.min {
		s.min = seq
	}
	s.bits[(seq/64)%(window/64)] |= 1 << (seq % 64)
	s.count++
}

// dedupe is the set of stored batches, bounded to maxBoots (exporter, boot) pairs; the least
// recently active pair is forgotten first (its exporter has restarted or gone).
type dedupe struct {
	mu       sync.Mutex
	maxBoots int
	boots    map[bootKey]*seqState
	lru      *list.List
}

func newDedupe(maxBoots int) *dedupe {
	return &dedupe{maxBoots: maxBoots, boots: make(map[bootKey]*seqState), lru: list.New()}
}

type verdict int

const (
	verdictNew verdict = iota
	verdictDuplicate
	verdictStale   // too old to tell
	verdictPending // the same batch is being stored by another request
)

// reserve decides what to do with k and, for a new batch, marks it pending.
func (d *dedupe) reserve(k Key) verdict {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.state(bootKey{k.Exporter, k.Boot})
	switch {
	case s.has(k.Seq):
		return verdictDuplicate
	case s.count > 0 && k.Seq+window <= s.max:
		return verdictStale
	}
	if _, ok := s.pending[k.Seq]; ok {
		return verdictPending
	}
	if s.pending == nil {
		s.pending = make(map[uint64]struct{})
	}
	s.pending[k.Seq] = struct{}{}
	return verdictNew
}

// finish ends a reservation; stored says whether the batch is now durable.
func (d *dedupe) finish(k Key, stored bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.state(bootKey{k.Exporter, k.Boot})
	delete(s.pending, k.Seq)
	if stored {
		s.add(k.Seq)
	}
}

// seen records a batch found in the spool at start.
func (d *dedupe) seen(k Key) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.state(bootKey{k.Exporter, k.Boot})
	if !s.has(k.Seq) && (s.count == 0 || k.Seq+window > s.max) {
		s.add(k.Seq)
	}
}

func (d *dedupe) state(b bootKey) *seqState {
	s, ok := d.boots[b]
	if ok {
		d.lru.MoveToFront(s.elem)
		return s
	}
	if len(d.boots) >= d.maxBoots {
		old := d.lru.Back()
		d.lru.Remove(old)
		delete(d.boots, old.Value.(bootKey))
	}
	s = &seqState{}
	s.elem = d.lru.PushFront(b)
	d.boots[b] = s
	return s
}

// missing sums, per exporter, the sequence numbers that never arrived.
func (d *dedupe) missing() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[string]uint64)
	for b, s := range d.boots {
		m[b.exporter] += s.missing()
	}
	return m
}
