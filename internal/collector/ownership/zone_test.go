package ownership

import (
	"net/netip"
	"testing"

	"github.com/flowscope/flowscope/internal/flow"
)

// TestFillEndpointZones: a rendered endpoint carries its node's current zone, read beside the
// node's name — whether the zone was known before the owner was interned or came after,
// changed or was forgotten, and when the name entered the table as another field first — and
// an owner's own zone wins. A node name's string holds its zone's string only while it lives.
func TestFillEndpointZones(t *testing.T) {
	s := newTestStore(t, Config{})
	pod := func(name, node string) Owner {
		return Owner{Kind: flow.EndpointPod, Namespace: "ns", Pod: name, PodUID: "uid-" + name, Node: node}
	}
	check := func(o Owner, want string) {
		t.Helper()
		id := s.o.intern(o)
		defer s.o.unref(id)
		v := s.View()
		defer v.Close()
		e := filled(t)
		v.FillEndpoint(&e, Ref(id), netip.MustParseAddr("10.0.0.1"), 80)
		if e.Zone != want || s.withZone(s.o.get(id)).Zone != want {
			t.Errorf("%+v: zone %q (rendered as an Owner: %q), want %q", o, e.Zone, s.withZone(s.o.get(id)).Zone, want)
		}
	}
	a := pod("a", "n1")
	held := s.o.intern(a) // (keeps n1's string in the table through the changes below)
	check(a, "")
	s.SetNodeZone("n1", "z1")
	check(a, "z1")
	s.SetNodeZone("n2", "z2")
	check(pod("b", "n2"), "z2")
	s.SetNodeZone("n1", "z3")
	check(a, "z3")
	check(Owner{Kind: flow.EndpointPod, Namespace: "ns", Pod: "c", PodUID: "uid-c", Node: "n1", Zone: "own"}, "own")
	s.SetNodeZone("n1", "")
	check(a, "")
	s.SetNodeZone("n4", "z4")
	host := s.o.intern(Owner{Kind: flow.EndpointHost, Node: "n9", Workload: "n4", WorkloadKind: "systemd"}) // "n4" enters as a workload
	check(pod("d", "n4"), "z4")
	s.SetNodeZone("same", "same")
	check(pod("e", "same"), "same")
	s.SetNodeZone("n1", "z5")
	s.o.unref(held)
	s.o.unref(host)
	for _, z := range []string{"z1", "z2", "z3", "z4", "z5", "same", "n1", "n2", "n4"} {
		if _, ok := s.o.strs.find(z); ok {
			t.Errorf("string %q still interned after its owners went", z)
		}
	}
}
