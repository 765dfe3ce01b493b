package ownership

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/flowscope/flowscope/internal/flow"
)

// TestUIDIndex compares the UID index with a map over random sets and deletes, with short,
// UUID and long UIDs (keyed, and compared by their bytes) in probe runs that collide, and
// owners replacing others.
func TestUIDIndex(t *testing.T) {
	rnd := rand.New(rand.NewPCG(8, 9))
	o := newOwners()
	x := uidIndex{o: &o}
	want := map[string]ownerID{}
	uid := func() string {
		switch n := rnd.IntN(500); rnd.IntN(3) {
		case 0:
			return fmt.Sprintf("%c-%08d", 'a'+rnd.IntN(4), n)
		case 1:
			return fmt.Sprintf("%08x-0000-4000-8000-000000000001", n)
		default:
			return fmt.Sprintf("%040d", n) // (uidLong)
		}
	}
	for i := range 100_000 {
		u := uid()
		switch id, ok := want[u]; {
		case rnd.IntN(3) != 0:
			n := o.intern(Owner{Kind: flow.EndpointPod, PodUID: u, Pod: fmt.Sprint("p", rnd.IntN(3))})
			x.set(n)
			want[u] = n
			if ok && id != n {
				o.unref(id)
			}
		case ok:
			x.del(u)
			delete(want, u)
			o.unref(id)
		}
		if got, ok := x.get(u); got != want[u] || ok != (want[u] != 0) {
			t.Fatalf("step %d: %s: owner %d, want %d", i, u, got, want[u])
		}
		if i%5_000 == 0 {
			for k, id := range want {
				if got, _ := x.get(k); got != id {
					t.Fatalf("step %d: %s: owner %d, want %d", i, k, got, id)
				}
			}
			if x.len() != len(want) || len(x.all()) != len(want) {
				t.Fatalf("step %d: %d indexed, want %d", i, x.len(), len(want))
			}
		}
	}
}

// A UID's fingerprint depends on all of it, not on the part a UUID's random digits take:
// UIDs that share their last 12 characters (or differ in one early byte) do not share
// fingerprints, so they cannot be chosen to crowd one probe run of the UID index.
func TestUIDFingerprintsSpread(t *testing.T) {
	for _, format := range []string{"%08x-0000-4000-8000-0123456789ab", "%08xabcdefabcdef", "%08x-not-a-uuid-but-long-0123456789ab"} {
		seen := map[uint32]bool{}
		for i := range 1000 {
			u := uidRefOf(fmt.Sprintf(format, i))
			seen[u.uh] = true
		}
		if len(seen) < 990 {
			t.Errorf("%q: 1,000 UIDs have %d fingerprints", format, len(seen))
		}
	}
}
