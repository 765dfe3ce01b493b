package ownership

import (
	"net/netip"

	"github.com/flowscope/flowscope/internal/flow"
)

// View reads the store under one read lock, for a batch of lookups and renderings: the
// holding window decides a second's worth of records under one View instead of locking per
// record. Close it promptly; while it is open the goroutine that holds it must call no other
// Store method (a waiting writer would deadlock a second read lock).
type View struct {
	s    *Store
	memo *LookupMemo
}

// View opens a View.
func (s *Store) View() View {
	s.mu.RLock()
	return View{s: s}
}

// MemoView opens a View whose lookups m remembers for the View's lifetime (see LookupMemo).
// m must not be used by two open Views at once.
func (s *Store) MemoView(m *LookupMemo) View {
	s.mu.RLock()
	m.begin(s)
	return View{s: s, memo: m}
}

// Close releases the View's lock.
func (v View) Close() { v.s.mu.RUnlock() }

// Lookup is Store.Lookup at `at` (Unix nanoseconds), answering with a Ref.
func (v View) Lookup(addr netip.Addr, port uint16, at int64, final bool) Answer {
	return v.memo.lookup(v.s, addr, port, at, final) // (a nil memo looks up directly)
}

// LookupBrief is Lookup answering in brief (see Brief).
func (v View) LookupBrief(addr netip.Addr, port uint16, at int64, final bool) Brief {
	return v.memo.lookupBrief(v.s, addr, port, at, final)
}

// LookupServiceBrief is LookupBrief (port 0) for the address a client dialled when its node
// translated it to another (the record's NAT): a Service's ClusterIP, as a rule. The View's
// memo keeps these answers apart from the others (see LookupMemo.services).
func (v View) LookupServiceBrief(addr netip.Addr, at int64, final bool) Brief {
	return v.memo.serviceMemo().lookupBrief(v.s, addr, 0, at, final)
}

// Warmth is what warming a flush's work pays for at a store's size.
type Warmth uint8

// Warmths, from the smallest store up.
const (
	WarmNone    Warmth = iota // the store stays in the core's cache: the loads warming adds cost more than the misses it overlaps
	WarmOwners                // the owners a flush renders miss, read seconds after their last use (from warmClaimMinAddrs addresses)
	WarmLookups               // the lookups' chains miss too (from warmMinAddrs)
)

// Warmth says what warming pays for at the store's size.
func (v View) Warmth() Warmth {
	switch n := v.s.ips.len(); {
	case n >= v.s.warmMin:
		return WarmLookups
	case n >= v.s.claimWarmMin:
		return WarmOwners
	}
	return WarmNone
}

// Resolve returns the richest owner known for a pod UID.
func (v View) Resolve(uid string) (Ref, bool) {
	u, ok := v.s.uids.get(uid)
	return Ref(u), ok
}

// Same reports whether two owners name one identity (SameIdentity).
func (v View) Same(a, b Ref) bool { return v.s.o.same(ownerID(a), ownerID(b)) }

// Owner renders an owner (its zone filled from its node's).
func (v View) Owner(r Ref) Owner { return v.s.withZone(v.s.o.get(ownerID(r))) }

// Kind returns an owner's kind.
func (v View) Kind(r Ref) flow.EndpointKind { return v.s.o.meta(ownerID(r)).endpoint() }

// Zone returns a node's zone ("" when unknown).
func (v View) Zone(node string) string { return v.s.o.zones[node] }

// Endpoint renders owner r as the flow endpoint addr:port (Owner(r).Endpoint without the
// intermediate Owner). The Labels map is shared and read-only.
func (v View) Endpoint(r Ref, addr netip.Addr, port uint16) flow.Endpoint {
	var e flow.Endpoint
	v.FillEndpoint(&e, r, addr, port)
	return e
}

// OwnerEndpoint renders an owner that is not interned (e.g. a host workload named from a
// record), its zone filled from its node's.
func (v View) OwnerEndpoint(o Owner, addr netip.Addr, port uint16) flow.Endpoint {
	return v.s.withZone(o).Endpoint(addr, port)
}

// Named reports whether a pod owner was named by Kubernetes (it carries its workload).
func (v View) Named(r Ref) bool { return v.s.o.meta(ownerID(r)).named() }

// FillEndpoint renders owner r into *e as the flow endpoint addr:port (like Endpoint, without
// copying the result). Field by field (a composite literal is built on the stack and copied):
// the strings are read first, unchecked (stringTable.at), then stored in one run, whose write
// barriers share two checks instead of one a field. (Read with bounds checks in the same
// order, it counted more instructions than field by field: 979 against 960 a record.)
func (v View) FillEndpoint(e *flow.Endpoint, r Ref, addr netip.Addr, port uint16) {
	o := &v.s.o
	k := &o.recs[r]
	t := &o.strs // its record 0 is "": an owner's missing strings
	kind := kinds[o.hot[r].m.kind()]
	node := t.at(k.strs[sNode])
	zone := t.at(k.strs[sZone]).s
	if zone == "" { // its node's, kept beside the node's name (none without a node: string 0)
		zone = t.at(node.zone).s
	}
	cluster, namespace := t.at(k.strs[sCluster]).s, t.at(k.strs[sNamespace]).s
	workload, workloadKind := t.at(k.strs[sWorkload]).s, t.at(k.strs[sWorkloadKind]).s
	account, service, network := t.at(k.strs[sServiceAccount]).s, t.at(k.strs[sService]).s, t.at(k.strs[sNetwork]).s
	labels := t.at(k.strs[sLabels]).labels
	e.Addr, e.Port, e.Kind = addr, port, kind
	e.Cluster, e.Namespace, e.Workload, e.WorkloadKind = cluster, namespace, workload, workloadKind
	e.Pod, e.PodUID, e.Node, e.Zone = k.pod(), k.uid(), node.s, zone
	e.ServiceAccount, e.Service, e.Network, e.Labels, e.Reason = account, service, network, labels, ""
}
