package attribute

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowscope/flowscope/internal/flow"
)

// wheelEntries counts the live entries of the wheel.
func (a *Attributor) wheelEntries() int { return len(a.entered()) }

// entered returns the records of the live wheel entries, in the order the full policy takes
// them (soonest first).
func (a *Attributor) entered() []*held {
	var hs []*held
	for sec := a.cursor; sec < a.cursor+int64(len(a.wheel.slots)); sec++ {
		for _, e := range a.wheel.slots[sec&a.wheel.mask] {
			if e.live() {
				hs = append(hs, e.h)
			}
		}
	}
	return hs
}

// A connection's two records added before either is checked take one wheel entry: the second
// rides the first, whose check emits both.
func TestRiderTakesNoEntryOfItsOwn(t *testing.T) {
	h := newHarness(t, Config{})
	h.heartbeat(cart, cartIP, 0, 100)
	h.heartbeat(auth, authIP, 0, 100)
	h.now = at(12)
	h.add(rec(flow.Client, cart, 10, 11), rec(flow.Server, auth, 10.001, 11.002))
	if n := h.a.wheelEntries(); n != 1 {
		t.Errorf("%d wheel entries for a joined pair, want 1", n)
	}
	if e := h.a.entered(); len(e) != 1 || !e[0].r.client() {
		t.Errorf("the wheel's entries are not the client's record alone")
	}
	other := rec(flow.Client, cart, 10, 11) // (waits for its peer: it keeps its entry)
	other.Record.LocalPort = 40001
	h.add(other)
	h.advance(25)
	if diff := cmp.Diff([]string{"both shop/cart -> shop/auth"}, names(h.out)); diff != "" {
		t.Fatalf("conns (-want +got):\n%s", diff)
	}
	if e := h.a.entered(); h.a.Held() != 1 || len(e) != 1 || e[0].r.lport != 40001 {
		t.Errorf("held %d, entries %d after the join", h.a.Held(), len(e))
	}
}

// riderPending adds a connection whose server record rides the client's and is pending at
// the first check: the server saw it start at 9.5 (skewed clocks, within the join tolerance),
// when the client's address was passing from db (until 9) to cart, whose own claim of it
// starts at 10.
func riderPending(t *testing.T, cfg Config) *harness {
	h := newHarness(t, cfg)
	h.heartbeat(auth, authIP, 0, 100)
	h.heartbeat(db, cartIP, 0, 9)
	h.now = at(12)
	h.add(rec(flow.Client, cart, 10, 11), rec(flow.Server, auth, 9.5, 11))
	return h
}

// A rider that is still pending when its partner's check decides the partner is checked
// again on the partner's entry, backing off as its own entry would: it is emitted, joined,
// at the first check after its remote end is covered.
func TestPendingRiderIsCheckedAgain(t *testing.T) {
	h := riderPending(t, Config{})
	if rider := h.a.soonest().partner; rider == nil || !rider.is(stRides) {
		t.Fatal("the server's record does not ride the client's")
	}
	h.advance(21)
	if len(h.out) != 0 || h.a.Held() != 2 {
		t.Fatalf("emitted %v with the server's peer uncovered (held %d)", names(h.out), h.a.Held())
	}
	h.heartbeat(cart, cartIP, 9.2, 100) // late: the pod's exporter reports its address from 9.2
	h.advance(22)
	if len(h.out) != 1 || h.out[0].Observed != "both" || h.out[0].Client.PodUID != "uid-cart" || h.out[0].JoinDisagreement {
		t.Fatalf("conns %+v", h.out)
	}
}

// A rider never covered is decided with its partner at the partner's deadline, joined.
func TestUncoveredRiderDecidedAtTheDeadline(t *testing.T) {
	h := riderPending(t, Config{Window: 30 * time.Second})
	for s := 12.0; s < 42; s++ {
		h.advance(s)
		if len(h.out) != 0 {
			t.Fatalf("emitted at %v, before the deadline: %v", s, names(h.out))
		}
	}
	h.advance(42)
	if len(h.out) != 1 || h.out[0].Observed != "both" {
		t.Fatalf("at the deadline: %+v", h.out)
	}
	if h.a.Held() != 0 {
		t.Errorf("held %d", h.a.Held())
	}
}

// A record whose partner was checked already takes its own entry.
func TestNoRideOnACheckedPartner(t *testing.T) {
	h := newHarness(t, Config{})
	h.heartbeat(cart, cartIP, 0, 100)
	h.heartbeat(auth, authIP, 0, 100)
	h.now = at(12)
	h.add(rec(flow.Client, cart, 10, 11))
	h.advance(21) // the client's record is decided and waits for its peer
	h.add(rec(flow.Server, auth, 10.001, 11.002))
	if e := h.a.entered(); len(e) != 2 || e[0].r.client() || e[0].is(stRides) {
		t.Fatal("the server's record rides a partner that was checked")
	}
	h.advance(22)
	if diff := cmp.Diff([]string{"both shop/cart -> shop/auth"}, names(h.out)); diff != "" {
		t.Fatalf("conns (-want +got):\n%s", diff)
	}
}

// When the window is full, the record due soonest is forced with the record that rides it.
func TestFullPolicyTakesTheRider(t *testing.T) {
	h := newHarness(t, Config{MaxHeld: 2})
	h.heartbeat(cart, cartIP, 0, 100)
	h.heartbeat(auth, authIP, 0, 100)
	h.now = at(12)
	h.add(rec(flow.Client, cart, 10, 11), rec(flow.Server, auth, 10.001, 11.002))
	other := rec(flow.Client, cart, 10, 11)
	other.Record.LocalPort = 40001
	h.add(other)
	if e := h.a.entered(); h.a.Held() != 1 || len(e) != 1 || e[0].r.lport != 40001 {
		t.Fatalf("held %d after the full policy", h.a.Held())
	}
	h.advance(12) // (the third record waits for its peer)
	if diff := cmp.Diff([]string{"both shop/cart -> shop/auth"}, names(h.out)); diff != "" {
		t.Fatalf("conns (-want +got):\n%s", diff)
	}
}

// A rider keeps its own window: added five seconds after its partner (the two exporters' clocks
// run ahead: both records start after they arrive, so both fall due at their start), it is
// decided at its own deadline, not at its partner's.
func TestRiderKeepsItsOwnWindow(t *testing.T) {
	h := newHarness(t, Config{Window: 30 * time.Second})
	h.heartbeat(auth, authIP, 0, 100)
	h.heartbeat(db, cartIP, 0, 19) // the address passes from db to cart…
	h.now = at(12)
	h.add(rec(flow.Client, cart, 20, 21)) // …whose claim starts at 20; the server saw 19.5
	h.now = at(17)
	h.add(rec(flow.Server, auth, 19.5, 21))
	if rider := h.a.soonest().partner; rider == nil || !rider.is(stRides) {
		t.Fatal("the server's record does not ride the client's")
	}
	for s := 18.0; s < 47; s++ { // the client's window ends at 42, the server's at 47
		h.advance(s)
		if len(h.out) != 0 {
			t.Fatalf("emitted at %v, before the server's record's deadline: %v", s, names(h.out))
		}
	}
	h.advance(47)
	if len(h.out) != 1 || h.out[0].Observed != "both" || h.a.Held() != 0 {
		t.Fatalf("at the deadline: %v, held %d", names(h.out), h.a.Held())
	}
}
