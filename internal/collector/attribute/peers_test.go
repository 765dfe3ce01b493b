package attribute

import (
	"net/netip"
	"strings"
	"testing"
)

// Pairs are interned by their strings' contents (equal strings in other bytes too), an id
// names its pair while records hold it, and trim lets go of the others (their ids reused,
// no slot remembering them).
func TestPeersIntern(t *testing.T) {
	var ps peers
	clone := func(s string) string { return strings.Clone(s) }
	a := ps.get("exp-a", "node-a")
	if b := ps.get(clone("exp-a"), clone("node-a")); b != a {
		t.Fatalf("equal pairs in other bytes have ids %d and %d", a, b)
	}
	b := ps.get("exp-b", "node-a")
	c := ps.get("exp-a", "node-b")
	if b == a || c == a || b == c || a == 0 || b == 0 || c == 0 {
		t.Fatalf("ids %d %d %d", a, b, c)
	}
	for i := range 3000 { // more pairs than slots, every one back by its strings
		e, n := "e"+string(rune('a'+i%26))+strings.Repeat("x", i%7), "n"+strings.Repeat("y", i%11)
		id := ps.get(e, n)
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
	for i, id := range ps.slots { // a slot naming a released pair finds other strings there
		if ps.list[id].is("exp-a", "node-a") || ps.list[id].is("exp-b", "node-a") {
			t.Fatalf("slot %d finds a released pair (id %d)", i, id)
		}
	}
	if d := ps.get("exp-z", "node-z"); ps.exporter(d) != "exp-z" || (d != a && d != b) && len(ps.free) > 0 {
		t.Errorf("a new pair took id %d (free %v)", d, ps.free)
	}
	if id := ps.get("exp-a", "node-a"); ps.exporter(id) != "exp-a" || ps.node(id) != "node-a" || ps.list[id].refs != 1 {
		t.Errorf("a released pair came back as id %d: %+v", id, ps.list[id])
	}
}

// A translation's entry is reused once its record is recycled, and the table's storage is
// given back at a trim when no record is translated.
func TestTranslationsReuse(t *testing.T) {
	var ts translations
	a := ts.take(netip.MustParseAddr("10.0.0.1"), 80)
	b := ts.take(netip.MustParseAddr("2001:db8::1"), 443)
	ts.at(a).vip = answer{Ref: 7}
	ts.drop(a)
	if c := ts.take(netip.MustParseAddr("10.0.0.2"), 81); c != a || ts.at(c).vip != (answer{}) || ts.at(c).port != 81 {
		t.Errorf("entry %d (freed %d) came back as %+v", c, a, *ts.at(c))
	}
	if got := ts.at(b).addr.addr(false); got != netip.MustParseAddr("2001:db8::1") || ts.at(b).port != 443 {
		t.Errorf("entry %d holds %v:%d", b, got, ts.at(b).port)
	}
	for range 5000 {
		ts.take(netip.MustParseAddr("10.0.0.3"), 1)
	}
	ts.trim()
	if ts.list == nil {
		t.Fatal("storage given back while entries are used")
	}
	for id := range len(ts.list) - 1 {
		ts.drop(uint32(id + 1))
	}
	ts.trim()
	if ts.list != nil || ts.inUse() != 0 {
		t.Errorf("storage kept (%d entries, %d used) with no entry used", len(ts.list), ts.inUse())
	}
}

// get is take then or: the id of the pair for one more held record.
func (t *peers) get(exporter, node string) uint32 {
	return t.or(t.take(exporter, node), exporter, node)
}
