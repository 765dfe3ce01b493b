package ownership

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/flowscope/flowscope/internal/flow"
)

// TestUIDIndex compares the UID index with a map over random sets and deletes, with UIDs
// whose fingerprints collide (same length and last 8 bytes) and owners replacing others.
func TestUIDIndex(t *testing.T) {
	rnd := rand.New(rand.NewPCG(8, 9))
	o := newOwners()
	x := uidIndex{o: &o}
	want := map[string]ownerID{}
	uid := func() string { return fmt.Sprintf("%c-%08d", 'a'+rnd.IntN(4), rnd.IntN(500)) }
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
