package ownership

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestOriginByContent checks that an origin's index depends on its name's contents, not on
// where the string's bytes are: every decoded batch brings its exporter's name in new bytes,
// and names whose bytes share a slot must not take each other's index.
func TestOriginByContent(t *testing.T) {
	s, err := New(Config{}, func() time.Time { return t0 }, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"exp-a", "exp-b", "exp-c"}
	want := map[string]uint16{}
	for round := range 50 {
		for _, n := range names {
			c := strings.Clone(n) // new bytes each time, as a decoded batch holds them
			if round%2 == 1 {
				c = n // the same bytes again: the slot's fast path
			}
			i := s.seen(c, 1)
			if w, ok := want[n]; ok && i != w {
				t.Fatalf("round %d: origin %q has index %d, before %d", round, n, i, w)
			}
			want[n] = i
		}
	}
	if want["exp-a"] == want["exp-b"] || want["exp-b"] == want["exp-c"] || want["exp-a"] == 0 {
		t.Fatalf("indexes %v: distinct origins share one, or one has the index of no origin", want)
	}
	// Two names in the same bytes (one a prefix of the other) share a slot: the length tells them apart.
	base := strings.Clone("exp-dexp-e")
	long, short := base[:5], base[:4]
	got := []uint16{s.seen(long, 1), s.seen(long, 1), s.seen(short, 1), s.seen(short, 1), s.seen(long, 1)} // (a found name takes the slot)
	if got[0] != got[1] || got[1] != got[4] || got[2] != got[3] || got[0] == got[2] {
		t.Fatalf("names sharing their bytes, %q, %q, %q, %q, %q: indexes %v", long, long, short, short, long, got)
	}
	if i := s.seen("", 1); i != 0 {
		t.Fatalf(`origin "" has index %d, want 0`, i)
	}
}
