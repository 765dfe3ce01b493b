package ownership

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/flow"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func pod(name, uid string) Owner {
	return Owner{Kind: flow.EndpointPod, Namespace: "shop", Pod: name, PodUID: uid, Workload: name[:len(name)-2], WorkloadKind: "Deployment"}
}

var (
	ip   = netip.MustParseAddr("10.244.1.7")
	podA = pod("cart-a", "uid-a")
	podB = pod("auth-b", "uid-b")
)

// step changes the store: a definite claim (hb), a Kubernetes open or close, or a sync mark.
type step struct {
	hb        *Claim
	kubeOpen  *Claim
	kubeClose *Claim
	synced    float64
}

func hb(o Owner, from, to float64) step {
	return step{hb: &Claim{Addr: ip, Owner: o, From: at(from), To: at(to), Source: SourceHeartbeat, Origin: "node-" + o.Pod}}
}

func kopen(o Owner, from float64) step {
	return step{kubeOpen: &Claim{Addr: ip, Owner: o, From: at(from), Source: SourceKubePod}}
}

func kclose(o Owner, to float64) step {
	return step{kubeClose: &Claim{Addr: ip, Owner: o, To: at(to), Source: SourceKubePod}}
}

func synced(sec float64) step { return step{synced: sec} }

func newTestStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	if cfg.SkewTolerance == 0 {
		cfg.SkewTolerance = 100 * time.Millisecond
	}
	if cfg.KubeLag == 0 {
		cfg.KubeLag = 10 * time.Second
	}
	s, err := New(cfg, func() time.Time { return at(1000) }, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func apply(t *testing.T, s *Store, steps []step) {
	t.Helper()
	for _, st := range steps {
		switch {
		case st.hb != nil:
			if err := s.Observe(*st.hb); err != nil {
				t.Fatal(err)
			}
		case st.kubeOpen != nil:
			if err := s.Open(*st.kubeOpen); err != nil {
				t.Fatal(err)
			}
		case st.kubeClose != nil:
			c := st.kubeClose
			s.Close(c.Addr, c.Port, c.Owner, c.Source, c.To)
		default:
			s.SetKubeSynced(at(st.synced))
		}
	}
}

// want is a lookup's expected answer: the pod name, "pending", or a reason.
func answer(r Result) string {
	switch {
	case r.Pending:
		return "pending"
	case r.Reason != "":
		return string(r.Reason)
	case r.Owner.Kind == flow.EndpointNetwork:
		return "network/" + r.Owner.Network
	}
	return r.Owner.Pod
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		at    float64
		final bool
		want  string
	}{
		{"heartbeat covers", []step{hb(podA, 0, 10)}, 5, true, "cart-a"},
		{"heartbeat covers, not final, no kube", []step{hb(podA, 0, 10)}, 5, false, "cart-a"},
		{"inside skew of the range end", []step{hb(podA, 0, 10)}, 9.95, true, "gap"},
		{"after the last heartbeat: pending", []step{hb(podA, 0, 10)}, 12, false, "pending"},
		{"after the last heartbeat, exporter silent: stale", []step{hb(podA, 0, 10)}, 12, true, "stale"},
		{"reuse within a second: the handover is a gap", []step{hb(podA, 0, 10), hb(podB, 10.5, 20)}, 10.3, true, "gap"},
		{"reuse: new owner after the handover", []step{hb(podA, 0, 10), hb(podB, 10.5, 20)}, 10.7, true, "auth-b"},
		{"reuse: old owner before the handover", []step{hb(podA, 0, 10), hb(podB, 10.5, 20)}, 9.8, true, "cart-a"},
		{"two exporters claim one moment", []step{hb(podA, 0, 10), hb(podB, 5, 15)}, 7, true, "conflict"},
		{"claims overlapping at the edges", []step{hb(podA, 0, 10), hb(podB, 9.95, 20)}, 10.06, true, "conflict"},
		{"heartbeats extend a range", []step{hb(podA, 0, 10), hb(podA, 0, 15), hb(podA, 0, 20)}, 18, true, "cart-a"},
		{"kube only, synced", []step{kopen(podA, 0), synced(100)}, 50, true, "cart-a"},
		{"kube only, not yet synced past the lag", []step{kopen(podA, 0), synced(55)}, 50, false, "pending"},
		{"kube only, informers went away", []step{kopen(podA, 0), synced(55)}, 50, true, "stale"},
		{"kube handover cannot be placed", []step{kopen(podA, 0), kopen(podB, 8), kclose(podA, 12), synced(100)}, 10, true, "gap"},
		{"kube after the handover", []step{kopen(podA, 0), kopen(podB, 8), kclose(podA, 12), synced(100)}, 13, true, "auth-b"},
		{"heartbeat decides a kube handover", []step{kopen(podA, 0), kopen(podB, 8), kclose(podA, 12), hb(podB, 9, 30), synced(100)}, 10, true, "auth-b"},
		{"heartbeat contradicts kube", []step{kopen(podA, 0), hb(podB, 9, 30), synced(100)}, 10, true, "conflict"},
		{"heartbeat waits for kube to be complete", []step{kopen(podA, 0), hb(podA, 0, 30), synced(15)}, 10, false, "pending"},
		{"heartbeat without kube being complete, final", []step{kopen(podB, 0), hb(podA, 0, 30), synced(15)}, 10, true, "cart-a"},
		{"no source: pending, then no-owner", nil, 10, false, "pending"},
		{"no source, final", nil, 10, true, "no-owner"},
		{"closed kube range only", []step{kopen(podA, 0), kclose(podA, 5), synced(100)}, 50, true, "gap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t, Config{})
			apply(t, s, tt.steps)
			if got := answer(s.Lookup(ip, 0, at(tt.at), tt.final)); got != tt.want {
				t.Errorf("lookup at %v (final %v) = %s, want %s", tt.at, tt.final, got, tt.want)
			}
		})
	}
}

func TestLookupEnrichesFromKube(t *testing.T) {
	s := newTestStore(t, Config{})
	bare := Owner{Kind: flow.EndpointPod, PodUID: "uid-a"}
	apply(t, s, []step{kopen(podA, 0), hb(bare, 0, 30), synced(100)})
	r := s.Lookup(ip, 0, at(10), false)
	if diff := cmp.Diff(podA, r.Owner); diff != "" {
		t.Errorf("owner (-want +got):\n%s", diff)
	}
	if !r.Exporter || r.Source != SourceHeartbeat|SourceKubePod {
		t.Errorf("exporter %v source %s, want true heartbeat+kube-pod", r.Exporter, r.Source)
	}
	if o, ok := s.Resolve("uid-a"); !ok || o != podA {
		t.Errorf("Resolve(uid-a) = %v %v", o, ok)
	}
}

func TestLookupUnclaimed(t *testing.T) {
	nets, err := ParseNetworks("nets.yaml", []byte("networks:\n  - name: corp\n    cidrs: [192.168.0.0/16]\n  - name: corp-lab\n    cidrs: [192.168.7.0/24]\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr    string
		cluster []netip.Prefix
		want    string
	}{
		{"8.8.8.8", nil, "external"},
		{"192.168.1.1", nil, "network/corp"},
		{"192.168.7.1", nil, "network/corp-lab"},
		{"10.1.2.3", nil, "no-owner"},
		{"192.168.7.1", []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}, "no-owner"},
		{"10.1.2.3", []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}, "external"},
	}
	for _, tt := range tests {
		s := newTestStore(t, Config{ClusterNetworks: tt.cluster})
		s.SetNetworks(nets)
		if got := answer(s.Lookup(netip.MustParseAddr(tt.addr), 0, at(5), true)); got != tt.want {
			t.Errorf("%s (cluster %v) = %s, want %s", tt.addr, tt.cluster, got, tt.want)
		}
	}
}

func TestHostNetworkByPort(t *testing.T) {
	s := newTestStore(t, Config{})
	node := Owner{Kind: flow.EndpointNode, Node: "node-1"}
	ds := pod("agent-x", "uid-x")
	if err := s.Observe(
		Claim{Addr: ip, Owner: node, From: at(0), To: at(100), Source: SourceHeartbeat, Origin: "node-1"},
		Claim{Addr: ip, Port: 9100, Owner: ds, From: at(0), To: at(100), Source: SourceHeartbeat, Origin: "node-1"},
	); err != nil {
		t.Fatal(err)
	}
	if got := answer(s.Lookup(ip, 9100, at(50), true)); got != "agent-x" {
		t.Errorf("listener port = %s, want agent-x", got)
	}
	if r := s.Lookup(ip, 40000, at(50), true); r.Owner.Kind != flow.EndpointNode {
		t.Errorf("other port = %+v, want the node", r)
	}
	if r := s.Lookup(ip, 0, at(50), true); r.Owner.Kind != flow.EndpointNode {
		t.Errorf("address alone = %+v, want the node (never the host-network pod)", r)
	}
}

func TestCompactionAndBounds(t *testing.T) {
	s := newTestStore(t, Config{Horizon: time.Minute, MaxRangesPerKey: 2, MaxRanges: 3})
	s.now = func() time.Time { return at(60) }
	apply(t, s, []step{hb(podA, 0, 10), hb(podB, 11, 20), hb(podA, 21, 30)})
	if s.Len() != 2 {
		t.Fatalf("Len = %d after 3 ranges on one key with MaxRangesPerKey 2", s.Len())
	}
	if got := answer(s.Lookup(ip, 0, at(5), true)); got != "gap" {
		t.Errorf("evicted moment = %s, want gap", got)
	}
	other := netip.MustParseAddr("10.244.9.9")
	c := func(a netip.Addr, from, to float64) Claim {
		return Claim{Addr: a, Owner: podA, From: at(from), To: at(to), Source: SourceHeartbeat}
	}
	if err := s.Observe(c(other, 40, 50)); err != nil {
		t.Fatal(err)
	}
	if err := s.Observe(c(netip.MustParseAddr("10.244.9.10"), 40, 50)); err == nil {
		t.Error("fourth range accepted with MaxRanges 3")
	}
	s.Compact(at(85))
	if s.Len() != 2 {
		t.Errorf("Len after compaction = %d, want 2", s.Len())
	}
	if got := answer(s.Lookup(ip, 0, at(22), true)); got != "stale" {
		t.Errorf("lookup before the horizon = %s, want stale", got)
	}
}

func TestBadClaims(t *testing.T) {
	s := newTestStore(t, Config{})
	bad := []Claim{
		{Owner: podA, From: at(0), To: at(1), Source: SourceHeartbeat},
		{Addr: ip, Owner: podA, From: at(2), To: at(1), Source: SourceHeartbeat},
		{Addr: ip, From: at(0), To: at(1), Source: SourceHeartbeat},
		{Addr: ip, Owner: podA, From: at(0), To: at(1), Source: SourceKubePod},
	}
	for _, c := range bad {
		if err := s.Observe(c); err == nil {
			t.Errorf("Observe(%+v) accepted", c)
		}
	}
	if err := s.Open(Claim{Addr: ip, Owner: podA, From: at(0), Source: SourceHeartbeat}); err == nil {
		t.Error("Open with an exporter source accepted")
	}
	if s.Len() != 0 {
		t.Errorf("bad claims changed the store: %d ranges", s.Len())
	}
}

// TestOwnersAreFreed: once every range is compacted away, no owner or string stays interned
// (reference counts balance across merges, evictions, re-opens and closes).
func TestOwnersAreFreed(t *testing.T) {
	s := newTestStore(t, Config{Horizon: time.Minute, MaxRangesPerKey: 3})
	s.now = func() time.Time { return at(0) }
	bare := Owner{Kind: flow.EndpointPod, PodUID: "uid-a"}
	apply(t, s, []step{hb(bare, 0, 5), kopen(podA, 0), kopen(podA, 0), hb(podA, 3, 10), hb(podB, 11, 20), hb(podA, 21, 30), hb(podB, 31, 40),
		kclose(podA, 10), kopen(podB, 11), kclose(podB, 40), synced(50)})
	if s.Len() == 0 || s.o.index.n == 0 {
		t.Fatal("nothing stored")
	}
	s.Compact(at(200))
	live := 0
	for _, h := range s.o.hot[1:] {
		if h.refs > 0 {
			live++
		}
	}
	if s.Len() != 0 || live != 0 || s.o.index.n != 0 || len(s.o.strs.index) != 0 || s.uids.len() != 0 {
		t.Errorf("after compacting everything: %d ranges, %d live owners, %d indexed, %d strings, %d uids", s.Len(), live, s.o.index.n, len(s.o.strs.index), s.uids.len())
	}
}

// TestRefsOutliveTheirOwners: a Ref from a lookup keeps naming its owner for the hold time,
// even once no range names the owner any more and other owners are interned meanwhile.
func TestRefsOutliveTheirOwners(t *testing.T) {
	now := at(0)
	s, err := New(Config{Horizon: time.Minute, SkewTolerance: time.Millisecond}, func() time.Time { return now }, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s.HoldRefs(2 * time.Minute)
	if err := s.Observe(Claim{Addr: ip, Owner: podA, From: at(0), To: at(10), Source: SourceHeartbeat, Origin: "n1"}); err != nil {
		t.Fatal(err)
	}
	v := s.View()
	r := v.Lookup(ip, 0, at(5).UnixNano(), true)
	v.Close()
	if !r.Attributed() {
		t.Fatalf("lookup: %+v", r)
	}
	churn := func(sec float64, uid string) {
		now = at(sec)
		s.Compact(now)
		o := pod("other-x", uid)
		if err := s.Observe(Claim{Addr: netip.MustParseAddr("10.244.9.9"), Owner: o, From: now, To: now, Source: SourceHeartbeat, Origin: "n2"}); err != nil {
			t.Fatal(err)
		}
	}
	churn(100, "uid-x1") // podA's range is compacted away: podA is quarantined
	churn(110, "uid-x2")
	v = s.View()
	got := v.Owner(r.Ref)
	v.Close()
	if got.PodUID != podA.PodUID || got.Pod != podA.Pod {
		t.Errorf("Ref renders %+v after its owner was freed, want %s", got, podA.Pod)
	}
	churn(400, "uid-x3") // past the hold: podA's id is free for reuse
	for _, q := range s.o.quarantine[s.o.qHead:] {
		if q.id == ownerID(r.Ref) {
			t.Errorf("owner %d still quarantined after the hold", q.id)
		}
	}
	if s.o.uid(ownerID(r.Ref)) == podA.PodUID { // freed (and reused by uid-x3's owner)
		t.Errorf("owner %d not freed after the hold: %+v", r.Ref, s.o.get(ownerID(r.Ref)))
	}
}

// TestExporterClaimsShareKubernetesOwners: a heartbeat naming a pod Kubernetes already named
// (with less detail) takes Kubernetes' owner, so both ranges share it; one that says
// something else keeps its own; closing the Kubernetes range leaves the definite one.
func TestExporterClaimsShareKubernetesOwners(t *testing.T) {
	s := newTestStore(t, Config{})
	kube := podA
	kube.Node, kube.Cluster = "n1", "prod"
	if err := s.Open(Claim{Addr: ip, Owner: kube, From: at(0), Source: SourceKubePod}); err != nil {
		t.Fatal(err)
	}
	exp := Owner{Kind: flow.EndpointPod, PodUID: podA.PodUID, Namespace: podA.Namespace, Pod: podA.Pod, Node: "n1"}
	if err := s.Observe(Claim{Addr: ip, Owner: exp, From: at(1), To: at(9), Source: SourceHeartbeat, Origin: "n1"}); err != nil {
		t.Fatal(err)
	}
	e := s.ips.get(keyOf(ip))
	if len(e.rs()) != 2 || e.rs()[0].owner != e.rs()[1].owner {
		t.Fatalf("ranges %+v: want two sharing one owner", e.rs())
	}
	other := exp
	other.Node = "n2" // disagrees with Kubernetes on a field: not folded into its owner
	other2 := netip.MustParseAddr("10.244.1.8")
	if err := s.Observe(Claim{Addr: other2, Owner: other, From: at(1), To: at(9), Source: SourceHeartbeat, Origin: "n2"}); err != nil {
		t.Fatal(err)
	}
	if e2 := s.ips.get(keyOf(other2)); s.o.get(e2.rs()[0].owner).Node != "n2" {
		t.Errorf("owner %+v, want the claim's own", s.o.get(e2.rs()[0].owner))
	}
	s.Close(ip, 0, kube, SourceKubePod, at(5))
	s.SetKubeSynced(at(100))
	if r := s.Lookup(ip, 0, at(7), true); r.Owner.Workload != podA.Workload || r.Reason != "" {
		t.Errorf("after the Kubernetes range closed: %+v", r)
	}
}
