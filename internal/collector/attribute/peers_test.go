package attribute

import (
	"strings"
	"testing"
)

// Pairs are interned by their strings' contents (equal strings in other bytes too), an id
// names its pair while records hold it, and trim lets go of the others (their ids reused,
// no slot remembering them).
func TestPeersIntern(t *testing.T) {
	var ps peers
	clone := func(s string) string { return strings.Clone(s) }
	a := ps.take("exp-a", "node-a")
	if b := ps.take(clone("exp-a"), clone("node-a")); b != a {
		t.Fatalf("equal pairs in other bytes have ids %d and %d", a, b)
	}
	b := ps.take("exp-b", "node-a")
	c := ps.take("exp-a", "node-b")
	if b == a || c == a || b == c || a == 0 || b == 0 || c == 0 {
		t.Fatalf("ids %d %d %d", a, b, c)
	}
	for i := range 3000 { // more pairs than slots, every one back by its strings
		e, n := "e"+string(rune('a'+i%26))+strings.Repeat("x", i%7), "n"+strings.Repeat("y", i%11)
		id := ps.take(e, n)
		if ps.exporter(id) != e || ps.node(id) != n {
			t.Fatalf("pair %q %q came back as %q %q", e, n, ps.exporter(id), ps.node(id))
		}
		ps.drop(id)
	}
	ps.drop(a)
	ps.trim()
	if ps.exporter(a) != "exp-a" || ps.exporter(b) != "exp-b" || ps.node(c) != "node-b" {
		t.Fatalf("a held pair was let go")
	}
	ps.drop(a)
	ps.drop(b)
	ps.trim()
	if ps.exporter(a) != "" || ps.exporter(b) != "" || ps.exporter(c) != "exp-a" {
		t.Fatalf("pairs no record holds were kept, or a held one let go")
	}
	for i := range ps.slots {
		if s := &ps.slots[i]; s.id != 0 && ps.list[s.id].exporter == "" {
			t.Fatalf("slot %d remembers released id %d", i, s.id)
		}
	}
	if d := ps.take("exp-z", "node-z"); ps.exporter(d) != "exp-z" || (d != a && d != b) && len(ps.free) > 0 {
		t.Errorf("a new pair took id %d (free %v)", d, ps.free)
	}
	if id := ps.take("exp-a", "node-a"); ps.exporter(id) != "exp-a" || ps.node(id) != "node-a" || ps.list[id].refs != 1 {
		t.Errorf("a released pair came back as id %d: %+v", id, ps.list[id])
	}
}
