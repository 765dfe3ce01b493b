package attribute

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
)

// In a small store Add gives the store its pod claims claimBatch at a time; the connections
// are the same as when a whole Add's claims go at once (as in a large store). The records'
// own claims are all the store knows, two generations of pods share the addresses, and
// Kubernetes names some of the pods.
func TestClaimBatchesAsOneBatch(t *testing.T) {
	const conns = 1500
	uid := func(i int) string { return fmt.Sprintf("uid-%02d", i) }
	mk := func(k int) []Input {
		g := k * 2 / conns // generation: pods 20g..20g+19 on 10.0.0.0..19
		c, s := 20*g+k%20, 20*g+(k*7+3)%20
		if s == c {
			s = 20*g + (k+1)%20
		}
		start := at(10 + 30*float64(g) + float64(k%(conns/2))/100)
		end := start.Add(500e6)
		addr := func(p int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(p % 20)}) }
		r := flow.Record{ConnID: uint64(k), Family: flow.IPv4, Direction: flow.Client, Start: start, End: end, StartKnown: true, Outcome: flow.OK,
			Workload: flow.Workload{Kind: flow.KindPod, PodUID: uid(c)}, LocalAddr: addr(c), LocalPort: uint16(30000 + k), RemoteAddr: addr(s), RemotePort: 8080}
		sv := r
		sv.Direction, sv.Workload.PodUID = flow.Server, uid(s)
		sv.LocalAddr, sv.LocalPort, sv.RemoteAddr, sv.RemotePort = r.RemoteAddr, r.RemotePort, r.LocalAddr, r.LocalPort
		node := func(p int) string { return fmt.Sprintf("n%d", p%3) }
		return []Input{{Exporter: "exp-" + node(c), Node: node(c), Record: r}, {Exporter: "exp-" + node(s), Node: node(s), Record: sv}}
	}
	run := func(whole bool) []string {
		h := newHarness(t, Config{})
		for i := 0; i < 40; i += 3 {
			o := pod(fmt.Sprintf("p%02d-x", i), uid(i), fmt.Sprintf("n%d", i%3))
			from, to := at(0), at(35)
			if i >= 20 {
				from, to = at(36), at(100)
			}
			if err := h.store.Open(ownership.Claim{Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i % 20)}), Owner: o, From: from, Source: ownership.SourceKubePod}); err != nil {
				t.Fatal(err)
			}
			h.store.Close(netip.AddrFrom4([4]byte{10, 0, 0, byte(i % 20)}), 0, o, ownership.SourceKubePod, to)
		}
		h.store.SetKubeSynced(at(200))
		var ins []Input
		for k := range conns {
			ins = append(ins, mk(k)...)
		}
		h.a.lookupsWarm = whole // Add in a store whose lookups warm gives all its claims at once
		h.add(ins...)
		h.advance(200)
		var out []string
		for _, c := range h.out {
			out = append(out, fmt.Sprintf("%s %s %s/%s/%s -> %s/%s/%s", c.ConnKey, c.Observed, c.Client.Name(), c.Client.PodUID, c.Client.Reason,
				c.Server.Name(), c.Server.PodUID, c.Server.Reason))
		}
		if len(out) != conns {
			t.Fatalf("%d connections written, want %d", len(out), conns)
		}
		return out
	}
	w := run(true)
	if diff := cmp.Diff(w, run(false)); diff != "" {
		t.Errorf("claims in batches of %d (-whole +batched):\n%s", claimBatch, diff)
	}
}

// localClaims.add writes every field of a pod claim in place, over storage an earlier batch
// used (observe does not clear it): the claim is what a fresh LocalPod with the record's
// fields would be. A new LocalPod field that add does not write fails this test.
func TestLocalPodClaimWritesEveryField(t *testing.T) {
	stale := reflect.ValueOf(&ownership.LocalPod{}).Elem()
	for i := range stale.NumField() { // every field not zero, as an earlier claim may have left it
		switch f := stale.Field(i); f.Kind() {
		case reflect.String:
			f.SetString("stale")
		case reflect.Int64:
			f.SetInt(-1)
		case reflect.Uint16:
			f.SetUint(1)
		case reflect.Struct: // netip.Addr
			f.Set(reflect.ValueOf(netip.MustParseAddr("192.0.2.9")))
		default:
			t.Fatalf("LocalPod.%s: a kind this test does not fill (%s)", stale.Type().Field(i).Name, f.Kind())
		}
	}
	for _, dir := range []flow.Direction{flow.Client, flow.Server} {
		r := flow.Record{Direction: dir, LocalAddr: netip.MustParseAddr("10.0.0.1"), LocalPort: 40000, RemoteAddr: netip.MustParseAddr("10.0.0.2"),
			RemotePort: 80, Start: at(1), End: at(2), Workload: flow.Workload{Kind: flow.KindPod, PodUID: "uid-a"}}
		var h held
		h.r.set(1, "node-a", &r, false, &locations{}, &translations{})
		l := localClaims{pods: []ownership.LocalPod{stale.Interface().(ownership.LocalPod)}}
		l.pods = l.pods[:0]
		l.add(&h, r.LocalAddr, "exp-a", "node-a")
		want := ownership.LocalPod{Addr: r.LocalAddr, UID: "uid-a", Origin: "exp-a", From: at(1).UnixNano(), To: at(2).UnixNano()}
		if dir == flow.Server {
			want.ListenPort = 40000
		}
		if len(l.pods) != 1 || l.pods[0] != want {
			t.Errorf("%s: claims %+v, want [%+v]", dir, l.pods, want)
		}
	}
}

// A record whose claim brought back an owner Kubernetes had not named yet (a heartbeat's) is
// named by Kubernetes once it speaks: the record resolves its pod's UID then.
func TestHintNamedByKubernetesLater(t *testing.T) {
	h := newHarness(t, Config{})
	bare := ownership.Owner{Kind: flow.EndpointPod, PodUID: cart.PodUID, Namespace: cart.Namespace, Pod: cart.Pod, Node: cart.Node} // as HeartbeatClaims names it
	h.heartbeat(bare, cartIP, 0, 100)
	h.heartbeat(auth, authIP, 0, 100)
	h.add(rec(flow.Client, cart, 1, 2))
	if err := h.store.Open(ownership.Claim{Addr: netip.MustParseAddr(cartIP), Owner: cart, From: at(0), Source: ownership.SourceKubePod}); err != nil {
		t.Fatal(err)
	}
	h.advance(70) // (the window's end: the store has not said Kubernetes is in sync)
	if diff := cmp.Diff([]string{"client shop/cart -> shop/auth"}, names(h.out)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if c := h.out[0].Client; c.WorkloadKind != "Deployment" || c.PodUID != cart.PodUID {
		t.Errorf("client end %+v, want Kubernetes' owner", c)
	}
}
