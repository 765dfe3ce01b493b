package attribute

import (
	"math"
	"testing"
	"time"
)

// A wheel slot holds the entries of its second and of later rounds; each tells how far its
// second lies from the one processed, from its 32 low bits, on either side of the wraps of
// those bits and of zero.
func TestWheelRounds(t *testing.T) {
	w := newWheel(10 * time.Second)
	span := w.mask + 1
	for _, sec := range []int64{0, 1_790_000_000, math.MaxUint32 - 3, math.MaxUint32 + 5, -7, -span - 1} {
		var a, b, c held
		b.gen, c.gen = 3, 9
		w.add(sec, &a)
		w.add(sec+span, &b)   // the same slot, a round later
		w.add(sec+3*span, &c) // three rounds later
		got := w.take(sec)
		if len(got) != 3 {
			t.Fatalf("sec %d: %d entries in the slot", sec, len(got))
		}
		for i, want := range []int64{0, span, 3 * span} {
			if d := got[i].dueAfter(sec); d != want {
				t.Errorf("sec %d: entry %d due %d s after it, want %d", sec, i, d, want)
			}
			if d := got[i].dueAfter(sec + want + 1); d != -1 {
				t.Errorf("sec %d: entry %d due %d s after the second after it, want -1", sec, i, d)
			}
		}
		if !got[1].live() || got[1].gen != 3 {
			t.Errorf("sec %d: the entry lost its record's generation", sec)
		}
		w.giveBack(got)
	}
}
