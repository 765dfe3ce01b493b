package ownership

import (
	"net/netip"
	"sync"

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

// sharedEndpoints are the rendered endpoints of live Service owners, by owner. Views read them
// under the store's read lock, several at once: mu guards the map. An owner's are dropped when
// its id is freed (owners.release), before the id can name another owner.
type sharedEndpoints struct {
	mu sync.Mutex
	by map[ownerID][]*flow.Endpoint
}

// ServiceEndpoint returns Service owner r's endpoint as addr:port, rendered once and shared: the
// caller must not change it. It is nil when r is not a Service (or names a node, whose zone may
// change): the caller renders its own (FillEndpoint).
func (v View) ServiceEndpoint(r Ref, addr netip.Addr, port uint16) *flow.Endpoint {
	o, id := &v.s.o, ownerID(r)
	if o.hot[id].m.kind() != kindService || o.recs[id].strs[sNode] != 0 {
		return nil
	}
	sh := o.shared
	sh.mu.Lock()
	defer sh.mu.Unlock()
	es := sh.by[id]
	for _, e := range es {
		if e.Addr == addr && e.Port == port {
			return e
		}
	}
	if len(es) == maxSharedPerOwner {
		return nil
	}
	e := new(flow.Endpoint)
	v.FillEndpoint(e, r, addr, port)
	sh.by[id] = append(es, e)
	return e
}

// forget drops the endpoints of owner id (freed).
func (s *sharedEndpoints) forget(id ownerID) {
	s.mu.Lock()
	delete(s.by, id)
	s.mu.Unlock()
}
