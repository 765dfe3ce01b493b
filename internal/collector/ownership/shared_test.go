package ownership

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flowscope/flowscope/internal/flow"
)

// TestServiceEndpointShared: a Service's endpoint for one address and port is rendered once
// and shared, equal to what FillEndpoint renders; other owners get none; an owner keeps a
// bounded number; and once its id is freed and names another Service, the endpoint rendered
// names the new one.
func TestServiceEndpointShared(t *testing.T) {
	s := newTestStore(t, Config{})
	vip := netip.MustParseAddr("10.96.0.10")
	svc := Owner{Kind: flow.EndpointService, Cluster: "c", Namespace: "ns", Service: "auth"}
	id := s.o.intern(svc)
	shared := func(id ownerID, port uint16) *flow.Endpoint {
		t.Helper()
		v := s.View()
		defer v.Close()
		e := v.ServiceEndpoint(Ref(id), vip, port)
		if e != nil {
			var want flow.Endpoint
			v.FillEndpoint(&want, Ref(id), vip, port)
			if d := cmp.Diff(want, *e, cmpopts.EquateComparable(netip.Addr{})); d != "" {
				t.Errorf("shared endpoint (-rendered +shared):\n%s", d)
			}
		}
		return e
	}
	a := shared(id, 80)
	if a == nil || shared(id, 80) != a {
		t.Fatalf("the same address and port gave %p, then another endpoint", a)
	}
	if b := shared(id, 443); b == nil || b == a || b.Port != 443 {
		t.Errorf("port 443: %+v", b)
	}
	for p := uint16(1); p <= 6; p++ { // 8 kept: 80, 443 and these
		if shared(id, p) == nil {
			t.Fatalf("port %d: none", p)
		}
	}
	if e := shared(id, 7); e != nil {
		t.Errorf("a ninth endpoint was kept: %+v", e)
	}
	if e := shared(s.o.intern(Owner{Kind: flow.EndpointPod, Namespace: "ns", Pod: "p", PodUID: "uid-p"}), 80); e != nil {
		t.Errorf("a pod's endpoint was shared: %+v", e)
	}
	s.o.unref(id) // freed: the next owner interned takes its id
	other := s.o.intern(Owner{Kind: flow.EndpointService, Cluster: "c", Namespace: "ns", Service: "billing"})
	if other != id {
		t.Fatalf("the freed id was not reused (%d, then %d): the test checks nothing", id, other)
	}
	if e := shared(other, 80); e == nil || e.Service != "billing" {
		t.Errorf("after the id named another Service: %+v", e)
	}
}

// TestServiceEndpointConcurrent: Views open at once (the store's read lock) find and add
// Services' endpoints without a lock of their own: each address and port gets one endpoint,
// whichever View rendered it, while the table grows (go test -race checks the publishing).
func TestServiceEndpointConcurrent(t *testing.T) {
	s := newTestStore(t, Config{})
	vip := netip.MustParseAddr("10.96.0.10")
	var ids []ownerID
	for i := range 40 {
		ids = append(ids, s.o.intern(Owner{Kind: flow.EndpointService, Namespace: "ns", Service: fmt.Sprintf("svc-%d", i)}))
	}
	const views = 8
	got := make([][]*flow.Endpoint, views)
	var wg sync.WaitGroup
	for g := range views {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := s.View()
			defer v.Close()
			for k := range len(ids) * 4 {
				i := (k*7 + g*13) % len(ids) // every View in its own order
				for port := uint16(1); port <= 4; port++ {
					got[g] = append(got[g], v.ServiceEndpoint(Ref(ids[i]), vip, port))
				}
			}
		}()
	}
	wg.Wait()
	first := map[[2]int]*flow.Endpoint{}
	for g := range views {
		for j, e := range got[g] {
			k, port := j/4, j%4+1
			i := (k*7 + g*13) % len(ids)
			if e == nil || e.Service != fmt.Sprintf("svc-%d", i) || e.Port != uint16(port) {
				t.Fatalf("view %d: %+v for svc-%d port %d", g, e, i, port)
			}
			if f, ok := first[[2]int{i, port}]; ok && f != e {
				t.Fatalf("svc-%d port %d: two endpoints (%p, %p)", i, port, f, e)
			}
			first[[2]int{i, port}] = e
		}
	}
}
