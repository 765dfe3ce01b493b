package attribute

import (
	"math/bits"
	"time"
)

// Held records are recycled: a finished record is reset, its generation raised, and put on a
// free list, so the holding window allocates nothing per record in steady state. References
// to a record that may outlive it (wheel slots, the claims' buffer) carry the generation they
// were made for and are ignored once it changed.

// maxFree bounds the free list; beyond it finished records are left to the collector.
const maxFree = 1 << 16

// trimEvery is how often the free list, the wheel's spare slots and the client index give
// back what the last period did not need: after a burst, memory returns to the runtime.
const trimEvery = 10 // seconds

// alloc returns a reset held record.
func (a *Attributor) alloc() *held {
	a.allocs++
	if n := len(a.free); n > 0 {
		h := a.free[n-1]
		a.free = a.free[:n-1]
		return h
	}
	chunk := make([]held, 256)
	for i := len(chunk) - 1; i > 0; i-- {
		a.free = append(a.free, &chunk[i])
	}
	return &chunk[0]
}

// recycle resets a finished record (raising its generation) and keeps it for reuse; finish
// gives back its out-of-line entries first. The record's own fields are written whole when it
// is taken again (kept.set: TestSetWritesEveryField), so of them only the references are
// dropped, for a free record to keep nothing alive (its exporter and node pair too: peers.trim
// may let it go).
func (a *Attributor) recycle(h *held) {
	h.heldState, h.r.name = heldState{gen: h.gen + 1}, ""
	a.peers.drop(h.r.pair)
	if len(a.free) < maxFree {
		a.free = append(a.free, h)
	}
}

// trim keeps at most as many free records as were taken in the last period, and storage
// that outgrew what is held now; it runs at most once per trimEvery seconds.
func (a *Attributor) trim(nowSec int64) {
	if nowSec < a.trimAt {
		return
	}
	a.trimAt = nowSec + trimEvery
	keep := min(len(a.free), a.allocs)
	a.allocs = 0
	clear(a.free[keep:])
	a.free = shrunk(a.free[:keep])
	a.wheel.trim()
	if cap(a.spare) >= 4096 && cap(a.spare) > 4*a.outPeak { // a burst's output batch is let go
		a.spare = nil
	}
	a.outPeak = 0
	a.byClient.shrink()
	a.local.forget()
	a.peers.trim()
	a.nats.trim()
}

// shrunk returns s in storage of its own size when s uses less than a quarter of its
// capacity (and the capacity is worth reclaiming), else s.
func shrunk[T any](s []T) []T {
	if cap(s) < 4096 || len(s)*4 > cap(s) {
		return s
	}
	return append(make([]T, 0, len(s)*2), s...)
}

// recheck schedules x's next check after a check found c pending (c is x, or the record that
// rides x): the waits double from 1 s up to the window, and end at the deadline.
func (a *Attributor) recheck(x, c *held, nowNs, deadline int64) {
	c.backoff = min(c.backoff+1, 33) // 1 s << 32 still fits
	wait := min(time.Second<<(c.backoff-1), a.cfg.Window)
	a.schedule(x, min(nowNs+int64(wait), deadline))
}

// ceilSec is the second that ends at or after at (Unix nanoseconds).
func ceilSec(at int64) int64 {
	sec := at / int64(time.Second)
	if at%int64(time.Second) != 0 {
		sec++
	}
	return sec
}

// ref is a reference to a held record for one generation (16 bytes: Add writes one a record
// and Flush reads it back, seconds later).
type ref struct {
	h   *held
	gen uint32
	due uint32 // for wheel slots: the second the check is due, its low 32 bits (see dueAfter)
}

func (r ref) live() bool { return r.h.gen == r.gen }

// dueAfter is how many seconds after sec the check is due (negative: before). A wheel's
// entries are due within a holding window of the seconds a flush processes, far inside the
// 68 years the low 32 bits tell apart.
func (r ref) dueAfter(sec int64) int64 { return int64(int32(r.due - uint32(sec))) }

// wheel schedules checks by second in a ring of slots covering the holding window; an entry
// is checked in the flush of its due second (or the first flush after it). Processed slots'
// storage is kept (up to maxSpares, until the next trim) for the slots filled next.
type wheel struct {
	slots  [][]ref
	mask   int64
	spares [][]ref
	peak   int // the largest slot taken since the last trim
}

const maxSpares = 8

func newWheel(span time.Duration) wheel {
	n := int64(1) << bits.Len64(uint64(span/time.Second)+2)
	return wheel{slots: make([][]ref, n), mask: n - 1}
}

func (w *wheel) add(sec int64, h *held) {
	i := sec & w.mask
	if w.slots[i] == nil {
		if n := len(w.spares); n > 0 {
			w.slots[i], w.spares = w.spares[n-1], w.spares[:n-1]
		}
	}
	w.slots[i] = append(w.slots[i], ref{h: h, gen: h.gen, due: uint32(sec)})
}

// take removes and returns the entries of sec's slot (entries of later rounds included).
func (w *wheel) take(sec int64) []ref {
	i := sec & w.mask
	s := w.slots[i]
	w.slots[i] = nil
	w.peak = max(w.peak, len(s))
	return s
}

// trim lets go of spare storage far larger than the slots since the last trim needed.
func (w *wheel) trim() {
	kept := w.spares[:0]
	for _, s := range w.spares {
		if cap(s) <= max(1024, 4*w.peak) {
			kept = append(kept, s)
		}
	}
	clear(w.spares[len(kept):])
	w.spares, w.peak = kept, 0
}

// giveBack returns a processed slot's storage for reuse.
func (w *wheel) giveBack(s []ref) {
	clear(s)
	if cap(s) > 0 && len(w.spares) < maxSpares {
		w.spares = append(w.spares, s[:0])
	}
}

// forceSoonest decides the held record due soonest now, with the record that rides it or
// waits for it (the full policy); false when none is held.
func (a *Attributor) forceSoonest() bool {
	h := a.soonest()
	if h == nil {
		return false
	}
	a.m.full.Inc()
	v := a.store.View()
	defer v.Close()
	if !h.is(stDecided) {
		h.markIf(stDecided, a.decide(v, h, true))
	}
	if p := h.partner; p != nil {
		if !p.is(stDecided) {
			p.markIf(stDecided, a.decide(v, p, true))
		}
		if a.confirmVIPJoin(h, p) {
			a.emitJoined(v, h, p)
			return true
		}
	}
	a.emitSingle(v, h)
	return true
}

// soonest returns the held record whose check is due first, as far as the wheel orders them
// (seconds, then the order entries were made in), for the full policy: the entries of the slot
// a flush is taking and has not checked yet, then the slots from the cursor on, then the
// entries a flush put aside for a later round. Every held record has a live entry there, or
// is the partner of one that has (it rides it, or waits for its check: Attributor.check).
// Dead entries met on the way are dropped; the one returned stays (it is dead once its record
// is finished). nil when no record is held.
func (a *Attributor) soonest() *held {
	if h := firstLive(&a.taking); h != nil {
		return h
	}
	w := &a.wheel
	for sec := a.cursor; sec < a.cursor+int64(len(w.slots)); sec++ {
		if h := firstLive(&w.slots[sec&w.mask]); h != nil {
			return h
		}
	}
	return firstLive(&a.later)
}

// firstLive drops the dead entries at the front of *s and returns the first live one's record
// (nil when none is left).
func firstLive(s *[]ref) *held {
	for len(*s) > 0 && !(*s)[0].live() { // (left in place: a flush may be reading them)
		*s = (*s)[1:]
	}
	if len(*s) == 0 {
		return nil
	}
	return (*s)[0].h
}
