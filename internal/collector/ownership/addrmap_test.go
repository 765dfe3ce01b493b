package ownership

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"unsafe"
)

// TestBlockTable compares the block table with a map over random puts and removes of
// clustered prefixes (long probe runs, removals inside them, growth): each block holds a mark
// that must move with it.
func TestBlockTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var bt blockTable
	want := map[uint32]uint32{}
	get := func(p uint32) uint32 {
		if i := bt.slot(p); i >= 0 {
			return bt.idx[i][0]
		}
		return 0
	}
	for i := range 200_000 {
		p := uint32(rng.IntN(3000)) * uint32(1+rng.IntN(2)*4096)
		switch b := want[p]; {
		case b == 0 && rng.IntN(3) != 0:
			want[p] = uint32(i + 1)
			bt.idx[bt.add(p)][0] = uint32(i + 1)
		case b != 0 && rng.IntN(2) == 0:
			delete(want, p)
			bt.remove(p)
		}
		if got := get(p); got != want[p] {
			t.Fatalf("step %d: prefix %d: block %d, want %d", i, p, got, want[p])
		}
		if i%10_000 == 0 {
			for q, b := range want {
				if get(q) != b {
					t.Fatalf("step %d: prefix %d lost", i, q)
				}
			}
			n := 0
			for _, p := range bt.pfx {
				if p != 0 {
					n++
				}
			}
			if a := uintptr(unsafe.Pointer(&bt.idx[0])) % 64; a != 0 {
				t.Fatalf("step %d: the slots' lines are %d bytes off", i, a)
			}
			if bt.n != len(want) || n != len(want) {
				t.Fatalf("step %d: %d blocks (%d slots), want %d", i, bt.n, n, len(want))
			}
		}
	}
}

// TestAddrMap compares the address map with a map over random creates and sweeps of IPv4
// (clustered in /28 blocks), IPv4-mapped and IPv6 addresses.
func TestAddrMap(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	m := newAddrMap()
	want := map[ipKey]*entry{}
	addr := func() netip.Addr {
		i := rnd.IntN(5000)
		switch rnd.IntN(4) {
		case 0:
			return netip.AddrFrom16([16]byte{0: 0xfd, 14: byte(i >> 8), 15: byte(i)})
		case 1:
			return netip.AddrFrom16(netip.AddrFrom4([4]byte{10, byte(i >> 12), byte(i >> 4), byte(i)}).As16())
		}
		return netip.AddrFrom4([4]byte{10, byte(i >> 12), byte(i >> 4), byte(i)})
	}
	for round := range 30 {
		for range 3000 {
			a := addr()
			k := keyOf(a)
			e := m.create(k)
			if w := want[k]; w != nil && w != e {
				t.Fatalf("round %d: %s: a second entry", round, a)
			}
			want[k] = e
			e.set(append(e.rs(), rng{from: int64(round), to: int64(round)}))
			if m.get(k) != e || m.getAddr(a) != e {
				t.Fatalf("round %d: %s not found", round, a)
			}
		}
		dropped := map[*entry]bool{}
		m.sweep(func(e *entry) bool {
			drop := rnd.IntN(3) == 0
			dropped[e] = drop
			return drop
		})
		for k, e := range want {
			got := m.get(k)
			switch {
			case dropped[e] && got != nil:
				t.Fatalf("round %d: a dropped entry is still there", round)
			case dropped[e]:
				delete(want, k)
			case got != e:
				t.Fatalf("round %d: an entry moved or went", round)
			}
		}
		if m.len() != len(want) || len(dropped) != m.len()+countTrue(dropped) {
			t.Fatalf("round %d: %d entries, want %d (%d swept)", round, m.len(), len(want), len(dropped))
		}
	}
}

func countTrue(m map[*entry]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}

// TestEntryRanges checks an entry's ranges through growth to the heap, a floor, and the
// move back into its own storage.
func TestEntryRanges(t *testing.T) {
	e := newEntry()
	var want []rng
	for i := range 6 {
		x := rng{from: int64(i), to: int64(10 + i), owner: ownerID(i + 1)}
		e.set(append(e.rs(), x))
		want = append(want, x)
	}
	if e.p == &e.in[0] || e.floorAt() != 0 {
		t.Fatalf("six ranges still inline (%v) or a floor %d", e.p == &e.in[0], e.floorAt())
	}
	e.setFloor(5)
	e.set(e.rs()[:3])
	e.fit()
	switch got := e.rs(); {
	case e.p != &e.in[0] || cap(got) != inlineRanges:
		t.Fatalf("three ranges not moved back inline")
	case len(got) != 3 || got[0] != want[0] || got[2] != want[2]:
		t.Fatalf("ranges %+v, want %+v", got, want[:3])
	case e.floorAt() != 5:
		t.Fatalf("floor %d, want 5", e.floorAt())
	}
	e.reset()
	if len(e.rs()) != 0 || cap(e.rs()) != inlineRanges || e.floorAt() != 0 {
		t.Fatalf("a reset entry has %d ranges, floor %d", len(e.rs()), e.floorAt())
	}
}

// TestLeadOwners checks the owners of an entry's first two ranges, read without its slice,
// inline and on the heap, and that an owner both ranges share is given once.
func TestLeadOwners(t *testing.T) {
	e := newEntry()
	for n := range 7 {
		var want [2]ownerID
		for j := range min(n, 2) {
			want[j] = ownerID(j + 1)
		}
		if a, b := e.leadOwners(); a != want[0] || b != want[1] {
			t.Fatalf("%d ranges (inline %v): lead owners %d, %d; want %v", n, e.p == &e.in[0], a, b, want)
		}
		e.set(append(e.rs(), rng{from: int64(n), to: int64(n + 1), owner: ownerID(n + 1)}))
	}
	e = newEntry()
	e.set(append(e.rs(), rng{from: 1, to: 2, owner: 7}, rng{from: 2, to: 3, owner: 7}, rng{from: 3, to: 4, owner: 8}))
	if a, b := e.leadOwners(); a != 7 || b != 0 {
		t.Fatalf("two ranges of owner 7: lead owners %d, %d; want 7, 0", a, b)
	}
}
