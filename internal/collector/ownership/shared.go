package ownership

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/flowscope/flowscope/internal/flow"
)

// Shared endpoints. A connection to a Service's address carries a third endpoint, the VIP: the
// same for every connection to that address and port while the Service's owner lives. The
// store renders it once and hands every such connection the same endpoint (read-only, as
// Endpoint.Labels maps are), where rendering each into storage of its own left ≈ 256 bytes of
// garbage a connection for the collector to collect.

// maxSharedPerOwner bounds the endpoints kept per owner (a Service's addresses and ports: a
// few); past it, the caller renders its own.
const maxSharedPerOwner = 8

// sharedEndpoints are the rendered endpoints of live Service owners, by owner id. Views read
// them under the store's read lock, several at once, without a lock of their own: an owner's
// list is published whole (an atomic pointer in the table) and never changed after, and a
// larger table replaces the old one (also an atomic pointer), which is never resized in place;
// a reader sees an owner's list as it was or as it is. Adding to a list, or growing the table,
// copies it under mu. An owner's are dropped when its id is freed (owners.release, under the
// store's write lock), before the id can name another owner.
type sharedEndpoints struct {
	mu  sync.Mutex
	tab atomic.Pointer[[]atomic.Pointer[[]*flow.Endpoint]]
}

// ServiceEndpoint returns Service owner r's endpoint as addr:port, rendered once and shared: the
// caller must not change it. It is nil when r is not a Service (or names a node, whose zone may
// change): the caller renders its own (FillEndpoint).
func (v View) ServiceEndpoint(r Ref, addr netip.Addr, port uint16) *flow.Endpoint {
	o, id := &v.s.o, ownerID(r)
	if o.hot[id].m.kind() != kindService || o.recs[id].strs[sNode] != 0 {
		return nil
	}
	if e := o.shared.find(id, addr, port); e != nil {
		return e
	}
	return o.shared.add(v, id, addr, port)
}

// find returns owner id's endpoint for addr:port, if rendered.
func (s *sharedEndpoints) find(id ownerID, addr netip.Addr, port uint16) *flow.Endpoint {
	tab := s.tab.Load()
	if tab == nil || int(id) >= len(*tab) {
		return nil
	}
	if es := (*tab)[id].Load(); es != nil {
		for _, e := range *es {
			if e.Addr == addr && e.Port == port {
				return e
			}
		}
	}
	return nil
}

// add renders owner id's endpoint for addr:port and publishes it (nil past maxSharedPerOwner).
func (s *sharedEndpoints) add(v View, id ownerID, addr netip.Addr, port uint16) *flow.Endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.find(id, addr, port); e != nil { // (another View's, meanwhile)
		return e
	}
	tab := s.tab.Load()
	if tab == nil || int(id) >= len(*tab) {
		grown := make([]atomic.Pointer[[]*flow.Endpoint], max(int(id)+1, 2*len(v.s.o.recs)))
		if tab != nil {
			for i := range *tab {
				grown[i].Store((*tab)[i].Load())
			}
		}
		s.tab.Store(&grown)
		tab = &grown
	}
	var es []*flow.Endpoint
	if old := (*tab)[id].Load(); old != nil {
		es = *old
	}
	if len(es) == maxSharedPerOwner {
		return nil
	}
	e := new(flow.Endpoint)
	v.FillEndpoint(e, Ref(id), addr, port)
	list := append(slices.Clip(es), e) // (a new array: readers may hold the old one)
	(*tab)[id].Store(&list)
	return e
}

// forget drops the endpoints of owner id (freed).
func (s *sharedEndpoints) forget(id ownerID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tab := s.tab.Load(); tab != nil && int(id) < len(*tab) {
		(*tab)[id].Store(nil)
	}
}
