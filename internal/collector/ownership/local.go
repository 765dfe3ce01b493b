package ownership

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
)

// The local ends of flow records are claims too: the socket's pod held the local address over
// the record. They come by the hundred thousand per second, nearly all inside ranges the pods'
// heartbeats made already, so they have a compact form and a fast path.

// ObserveLocal is Observe for the local ends of flows: for each pod claim i it also sets
// pods[i] (when pods is not nil) to the richest owner of the claim's pod UID found on the
// claimed address, or 0 — a Ref valid like a lookup's, which saves a Resolve by UID.
func (s *Store) ObserveLocal(claims []Claim, pods []Ref) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for i := range claims {
		pod, err := s.observe(&claims[i])
		if err != nil {
			errs = append(errs, err)
		}
		if pods != nil {
			pods[i] = Ref(pod)
		}
	}
	return errors.Join(errs...)
}

// LocalPod is the local end of a flow record in a pod, in compact form: the pod (by UID) held
// Addr over [From, To] (Unix nanoseconds); ListenPort, for a server socket, is claimed instead
// when Addr turns out to be a node's (see Claim.ListenPort). Origin names the exporter.
type LocalPod struct {
	Addr       netip.Addr
	UID        string
	Origin     string
	From, To   int64
	ListenPort uint16
}

// ObservePods stores the local ends of flows in pods (SourceFlow claims) and sets refs[i] as
// ObserveLocal does. A claim inside a range of its pod only notes its source.
func (s *Store) ObservePods(pods []LocalPod, refs []Ref) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for i := range pods {
		p := &pods[i]
		ref, err := s.observePod(p)
		if err != nil {
			errs = append(errs, err)
		}
		refs[i] = Ref(ref)
	}
	return errors.Join(errs...)
}

func (s *Store) observePod(p *LocalPod) (ownerID, error) {
	if !p.Addr.IsValid() || p.UID == "" || p.From == 0 || p.To < p.From {
		s.m.rejected.WithLabelValues("invalid").Inc()
		return 0, fmt.Errorf("ownership: bad local claim for %s (pod %q, [%d, %d])", p.Addr, p.UID, p.From, p.To)
	}
	if p.To < s.floor {
		s.m.rejected.WithLabelValues("past-horizon").Inc()
		return 0, nil
	}
	if e := s.ips[keyOf(p.Addr)]; e != nil {
		if covered, pod := s.coveredBy(e, p.UID, SourceFlow, p.From, p.To); covered {
			oi := s.origin(p.Origin)
			s.originSeen[oi] = max(s.originSeen[oi], p.To)
			s.m.claim(SourceFlow)
			return pod, nil
		}
	}
	c := Claim{Addr: p.Addr, Owner: Owner{Kind: flow.EndpointPod, PodUID: p.UID}, From: time.Unix(0, p.From), To: time.Unix(0, p.To),
		Source: SourceFlow, Origin: p.Origin, ListenPort: p.ListenPort}
	return s.observe(&c)
}

// internDefinite interns the owner of an exporter claim: a pod's owner already known for its
// UID (Kubernetes names it) when that one says all the claim's owner says and more, so a
// pod's definite and Kubernetes ranges share one owner — half the owners, and lookups that
// compare ids instead of owners. Kubernetes claims keep their own owners: they are closed by
// owner (Close).
func (s *Store) internDefinite(o Owner) ownerID {
	if o.Kind == flow.EndpointPod && o.PodUID != "" {
		if u, ok := s.uids[o.PodUID]; ok && s.o.detail(u) > o.detail() && includes(s.o.get(u), o) {
			s.o.ref(u)
			return u
		}
	}
	return s.internOwner(o)
}

// includes reports whether every field o names, full names the same.
func includes(full, o Owner) bool {
	f, p := shared(&full), shared(&o)
	for i := range p {
		if *p[i] != "" && *p[i] != *f[i] {
			return false
		}
	}
	return full.Kind == o.Kind && (o.Pod == "" || o.Pod == full.Pod) && (o.PodUID == "" || o.PodUID == full.PodUID)
}
