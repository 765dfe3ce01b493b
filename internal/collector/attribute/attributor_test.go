package attribute

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

type harness struct {
	t       *testing.T
	now     time.Time
	store   *ownership.Store
	a       *Attributor
	reg     *prometheus.Registry
	out     []flow.Conn
	sinkErr error
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, now: t0, reg: prometheus.NewRegistry()}
	clock := func() time.Time { return h.now }
	var err error
	h.store, err = ownership.New(ownership.Config{SkewTolerance: 100 * time.Millisecond, KubeLag: 10 * time.Second}, clock, h.reg)
	if err != nil {
		t.Fatal(err)
	}
	sink := SinkFunc(func(_ context.Context, conns []flow.Conn) error {
		if h.sinkErr != nil {
			return h.sinkErr
		}
		h.out = append(h.out, conns...)
		return nil
	})
	h.a, err = New(cfg, h.store, sink, clock, h.reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// advance moves the clock to sec and flushes.
func (h *harness) advance(sec float64) {
	h.t.Helper()
	h.now = at(sec)
	_ = h.a.Flush(h.t.Context())
}

func (h *harness) heartbeat(o ownership.Owner, addr string, from, to float64) {
	h.t.Helper()
	if err := h.store.Observe(ownership.Claim{Addr: netip.MustParseAddr(addr), Owner: o, From: at(from), To: at(to), Source: ownership.SourceHeartbeat, Origin: "exp-" + o.Node}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) add(ins ...Input) {
	h.t.Helper()
	if err := h.a.Add(ins...); err != nil {
		h.t.Fatal(err)
	}
}

func pod(name, uid, node string) ownership.Owner {
	return ownership.Owner{Kind: flow.EndpointPod, Namespace: "shop", Pod: name, PodUID: uid, Workload: name[:len(name)-2], WorkloadKind: "Deployment", Node: node}
}

var (
	cart = pod("cart-a", "uid-cart", "n1")
	auth = pod("auth-b", "uid-auth", "n2")
	db   = pod("db-c", "uid-db", "n2")
)

const (
	cartIP = "10.244.1.5"
	authIP = "10.244.2.9"
)

// rec is a record of one connection between cartIP:40000 (client) and authIP:8080.
func rec(dir flow.Direction, o ownership.Owner, start, end float64) Input {
	r := flow.Record{ConnID: 7, Family: flow.IPv4, Direction: dir, Start: at(start), End: at(end), StartKnown: true, Outcome: flow.OK,
		Workload: flow.Workload{Kind: flow.KindPod, PodUID: o.PodUID}}
	c, s := netip.MustParseAddr(cartIP), netip.MustParseAddr(authIP)
	if dir == flow.Client {
		r.LocalAddr, r.LocalPort, r.RemoteAddr, r.RemotePort = c, 40000, s, 8080
		r.BytesSent, r.BytesReceived, r.SrttUs = 100, 5000, 300
	} else {
		r.LocalAddr, r.LocalPort, r.RemoteAddr, r.RemotePort = s, 8080, c, 40000
		r.BytesSent, r.BytesReceived, r.SrttUs = 5000, 100, 250
	}
	return Input{Exporter: "exp-" + o.Node, Node: o.Node, Record: r}
}

func names(conns []flow.Conn) []string {
	var out []string
	for _, c := range conns {
		out = append(out, c.Observed+" "+c.Client.Name()+" -> "+c.Server.Name())
	}
	return out
}

func TestJoinBothEnds(t *testing.T) {
	h := newHarness(t, Config{})
	h.heartbeat(cart, cartIP, 0, 100)
	h.heartbeat(auth, authIP, 0, 100)
	h.add(rec(flow.Client, cart, 10, 11))
	h.advance(12)
	if len(h.out) != 0 {
		t.Fatalf("client record emitted before its peer could report: %v", names(h.out))
	}
	h.add(rec(flow.Server, auth, 10.001, 11.002))
	h.advance(13)
	want := []string{"both shop/cart -> shop/auth"}
	if diff := cmp.Diff(want, names(h.out)); diff != "" {
		t.Fatalf("conns (-want +got):\n%s", diff)
	}
	c := h.out[0]
	if c.BytesClientToServer != 100 || c.BytesServerToClient != 5000 || c.ClientSrttUs != 300 || c.ServerSrttUs != 250 || c.JoinDisagreement {
		t.Errorf("joined counters wrong: %+v", c)
	}
	if got := testutil.ToFloat64(h.a.m.joined); got != 1 {
		t.Errorf("joined_total = %v", got)
	}
	if got := testutil.ToFloat64(h.a.m.conns.WithLabelValues("both")); got != 1 {
		t.Errorf("conns_total{observed=both} = %v", got)
	}
	if h.a.Held() != 0 {
		t.Errorf("held = %d after the join", h.a.Held())
	}
}

// A joined connection starts at the client's start and ends at the later of the two ends.
func TestJoinedTimes(t *testing.T) {
	for _, ends := range [][2]float64{{11, 11.002}, {11.5, 11.002}, {11, 11}} {
		h := newHarness(t, Config{})
		h.heartbeat(cart, cartIP, 0, 100)
		h.heartbeat(auth, authIP, 0, 100)
		h.add(rec(flow.Client, cart, 10, ends[0]), rec(flow.Server, auth, 10.001, ends[1]))
		h.advance(13)
		if len(h.out) != 1 || h.out[0].Observed != "both" {
			t.Fatalf("ends %v: conns %v", ends, names(h.out))
		}
		if c, end := h.out[0], at(max(ends[0], ends[1])); !c.Start.Equal(at(10)) || !c.End.Equal(end) {
			t.Errorf("ends %v: connection from %v to %v, want from %v to %v", ends, c.Start, c.End, at(10), end)
		}
	}
}

// Records joined exactly leave the client index at once; the next connection of the same
// client address and port (its records held alongside) joins its own records.
func TestJoinedRecordsLeaveTheIndex(t *testing.T) {
	h := newHarness(t, Config{})
	h.heartbeat(cart, cartIP, 0, 100)
	h.heartbeat(auth, authIP, 0, 100)
	first := []Input{rec(flow.Client, cart, 10, 11), rec(flow.Server, auth, 10.001, 11.002)}
	h.add(first...)
	if n := h.a.byClient.n; n != 0 {
		t.Errorf("%d client keys indexed after an exact join", n)
	}
	second := []Input{rec(flow.Client, cart, 20, 21), rec(flow.Server, auth, 20.001, 21.002)}
	for i := range second {
		second[i].Record.ConnID = 8
	}
	h.add(second[0])
	if n := h.a.byClient.n; n != 1 {
		t.Errorf("%d client keys indexed with one record waiting, want 1", n)
	}
	h.add(second[1])
	h.advance(40)
	want := []string{"both shop/cart -> shop/auth", "both shop/cart -> shop/auth"}
	if diff := cmp.Diff(want, names(h.out)); diff != "" {
		t.Fatalf("conns (-want +got):\n%s", diff)
	}
	for i, c := range h.out {
		if want := time.Duration(10*(i+1)) * time.Second; c.Start.Sub(t0) != want {
			t.Errorf("connection %d starts at %v, want %v", i, c.Start.Sub(t0), want)
		}
	}
	if h.a.Held() != 0 || h.a.byClient.n != 0 {
		t.Errorf("held = %d, indexed %d after the joins", h.a.Held(), h.a.byClient.n)
	}
}

func TestSingleSidedWaitsForJoinThenEmits(t *testing.T) {
	h := newHarness(t, Config{JoinWait: 20 * time.Second})
	h.heartbeat(cart, cartIP, 0, 100)
	h.heartbeat(auth, authIP, 0, 100)
	h.add(rec(flow.Client, cart, 10, 11))
	h.advance(19)
	if len(h.out) != 0 {
		t.Fatal("emitted before the join wait")
	}
	h.advance(21)
	if diff := cmp.Diff([]string{"client shop/cart -> shop/auth"}, names(h.out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDelayedHeartbeatAndReuse(t *testing.T) {
	h := newHarness(t, Config{})
	h.heartbeat(cart, cartIP, 0, 200)
	h.heartbeat(auth, authIP, 0, 30) // auth held the address until 30
	// db takes the address at 30.4; its heartbeat arrives 25 s late.
	in := rec(flow.Client, cart, 31, 32)
	h.add(in)
	h.advance(40)
	if len(h.out) != 0 || h.a.Held() != 1 {
		t.Fatalf("decided without coverage: %v", names(h.out))
	}
	h.heartbeat(db, authIP, 30.4, 55)
	h.advance(52) // past the join wait (30 s after arrival at 0)
	if diff := cmp.Diff([]string{"client shop/cart -> shop/db"}, names(h.out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestUnattributedAtDeadline(t *testing.T) {
	h := newHarness(t, Config{Window: 30 * time.Second})
	h.heartbeat(cart, cartIP, 0, 200)
	h.add(rec(flow.Client, cart, 1, 2)) // nobody ever claims authIP
	in := rec(flow.Client, cart, 1, 2)  // to the internet
	in.Record.RemoteAddr, in.Record.LocalPort = netip.MustParseAddr("93.184.216.34"), 40001
	h.add(in)
	h.advance(1)
	if diff := cmp.Diff([]string{"client shop/cart -> unattributed:external"}, names(h.out)); diff != "" {
		t.Errorf("external not decided at once (-want +got):\n%s", diff)
	}
	h.advance(30)
	if diff := cmp.Diff([]string{"client shop/cart -> unattributed:external", "client shop/cart -> unattributed:no-owner"}, names(h.out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := testutil.ToFloat64(h.a.m.unattributed.WithLabelValues("no-owner")); got != 1 {
		t.Errorf("unattributed{no-owner} = %v", got)
	}
}

func TestJoinDisagreement(t *testing.T) {
	h := newHarness(t, Config{})
	impostor := pod("evil-z", "uid-evil", "n3")
	h.heartbeat(cart, cartIP, 0, 100)
	h.heartbeat(auth, authIP, 0, 100)
	h.add(rec(flow.Client, cart, 10, 11))
	srv := rec(flow.Server, auth, 10, 11)
	h.store.Observe(ownership.Claim{Addr: netip.MustParseAddr(cartIP), Owner: impostor, From: at(0), To: at(100), Source: ownership.SourceHeartbeat, Origin: "x"})
	h.add(srv)
	h.advance(12)
	if len(h.out) != 1 {
		t.Fatalf("conns: %v", names(h.out))
	}
	// The cart address is now claimed by two pods: the server's lookup is a conflict, which is
	// no disagreement; the client names itself from its socket.
	if h.out[0].Client.Name() != "shop/cart" || h.out[0].JoinDisagreement {
		t.Errorf("got %+v", h.out[0])
	}
}

// withAuthService gives the store the auth Service's ClusterIP (returned), Kubernetes synced
// to 100 and heartbeats of cart and auth over [0, 100].
func (h *harness) withAuthService() netip.Addr {
	h.t.Helper()
	vip := netip.MustParseAddr("10.96.0.10")
	svc := ownership.Owner{Kind: flow.EndpointService, Namespace: "shop", Service: "auth"}
	if err := h.store.Open(ownership.Claim{Addr: vip, Owner: svc, From: at(0), Source: ownership.SourceKubeService}); err != nil {
		h.t.Fatal(err)
	}
	h.store.SetKubeSynced(at(100))
	h.heartbeat(cart, cartIP, 0, 100)
	h.heartbeat(auth, authIP, 0, 100)
	return vip
}

func TestServiceVIPWithTranslation(t *testing.T) {
	h := newHarness(t, Config{})
	vip := h.withAuthService()
	cl := rec(flow.Client, cart, 10, 11)
	cl.Record.RemoteAddr, cl.Record.RemotePort = vip, 80
	cl.Record.NatRemoteAddr, cl.Record.NatRemotePort = netip.MustParseAddr(authIP), 8080
	h.add(cl, rec(flow.Server, auth, 10, 11))
	h.now = at(25)
	h.advance(25)
	if diff := cmp.Diff([]string{"both shop/cart -> shop/auth"}, names(h.out)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if v := h.out[0].VIP; v == nil || v.Name() != "shop/svc/auth" || v.Port != 80 {
		t.Errorf("VIP = %+v", v)
	}
}

// When the window is full, the record due soonest is decided at once: of records added in
// turn, the one that starts first (its check waits for Kubernetes to speak about its start).
func TestFullPolicyDecidesSoonest(t *testing.T) {
	h := newHarness(t, Config{MaxHeld: 2})
	h.heartbeat(cart, cartIP, 0, 100)
	for i, start := range []float64{3, 1, 2} {
		in := rec(flow.Client, cart, start, start+1)
		in.Record.LocalPort = uint16(40000 + i)
		h.add(in)
	}
	if got := testutil.ToFloat64(h.a.m.full); got != 1 || h.a.Held() != 2 {
		t.Errorf("holding_full_total = %v, held = %d", got, h.a.Held())
	}
	h.a.mu.Lock()
	var ports []uint16
	for _, x := range h.a.entered() {
		ports = append(ports, x.r.lport)
	}
	h.a.mu.Unlock()
	if diff := cmp.Diff([]uint16{40002, 40000}, ports); diff != "" {
		t.Errorf("records left, soonest first (-want +got):\n%s", diff)
	}
	h.advance(0)
	if diff := cmp.Diff([]string{"client shop/cart -> unattributed:no-owner"}, names(h.out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRejectsBadRecords(t *testing.T) {
	h := newHarness(t, Config{})
	bad := rec(flow.Client, cart, 2, 1)
	noAddr := rec(flow.Client, cart, 1, 2)
	noAddr.Record.RemoteAddr = netip.Addr{}
	outcome := rec(flow.Client, cart, 1, 2)
	outcome.Record.Outcome = "exploded"
	zoned := rec(flow.Client, cart, 1, 2)
	zoned.Record.RemoteAddr = netip.MustParseAddr("fe80::1%eth0")
	if err := h.a.Add(bad, noAddr, outcome, zoned); err == nil || !strings.Contains(err.Error(), `unknown outcome "exploded"`) ||
		!strings.Contains(err.Error(), "zoned address") {
		t.Errorf("bad records accepted, or not said why: %v", err)
	}
	if h.a.Held() != 0 || testutil.ToFloat64(h.a.m.rejected) != 4 {
		t.Errorf("held %d rejected %v", h.a.Held(), testutil.ToFloat64(h.a.m.rejected))
	}
}

func TestSinkErrorRetries(t *testing.T) {
	h := newHarness(t, Config{})
	in := rec(flow.Client, cart, 1, 2)
	in.Record.RemoteAddr = netip.MustParseAddr("1.1.1.1")
	h.add(in)
	h.sinkErr = errors.New("store down")
	h.advance(1)
	h.sinkErr = nil
	h.advance(2)
	if len(h.out) != 1 {
		t.Errorf("after a failed write and a retry: %v", names(h.out))
	}
}

func TestLocalEndClaimsOwnership(t *testing.T) {
	h := newHarness(t, Config{})
	h.heartbeat(auth, authIP, 0, 1) // names the UID; the range ends at 1
	h.heartbeat(cart, cartIP, 0, 100)
	h.add(rec(flow.Server, auth, 10, 20)) // the server's own socket proves auth held authIP over [10, 20]
	in := rec(flow.Client, cart, 15, 16)
	in.Record.LocalPort = 40001
	h.add(in)
	h.advance(40)
	got := names(h.out)
	if diff := cmp.Diff([]string{"server shop/cart -> shop/auth", "client shop/cart -> shop/auth"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestHostNetworkPodByItsListeningPort(t *testing.T) {
	h := newHarness(t, Config{})
	node := ownership.Owner{Kind: flow.EndpointNode, Node: "n2"}
	agent := pod("agent-x", "uid-agent", "n2")
	h.heartbeat(node, authIP, 0, 100)
	h.heartbeat(cart, cartIP, 0, 100)
	h.store.Observe(ownership.Claim{Addr: netip.MustParseAddr("10.9.9.9"), Owner: agent, From: at(0), To: at(1), Source: ownership.SourceHeartbeat}) // names the UID
	srv := rec(flow.Server, agent, 10, 14)                                                                                                           // the agent listens on the node's address
	h.add(srv)
	// Another client of the agent during that connection (a listener's claim covers only the
	// connections seen on it, until heartbeats carry listening ports).
	cl := rec(flow.Client, cart, 12, 13)
	cl.Record.LocalPort = 40100
	h.add(cl)
	other := rec(flow.Client, cart, 12, 13)
	other.Record.LocalPort, other.Record.RemotePort = 40101, 22
	h.add(other)
	h.advance(60)
	got := names(h.out)
	want := []string{"server shop/cart -> shop/agent", "client shop/cart -> shop/agent", "client shop/cart -> node/n2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestFullPolicyWithinOneBatch: records forced out by the full policy during the Add that took
// them are recycled before their batch's claims are applied; the recycled records take no
// other record's local owner.
func TestFullPolicyWithinOneBatch(t *testing.T) {
	h := newHarness(t, Config{MaxHeld: 2})
	h.heartbeat(cart, cartIP, 0, 100)
	h.heartbeat(auth, authIP, 0, 100)
	var ins []Input
	for i := range 5 {
		o, dir := cart, flow.Client
		if i%2 == 1 {
			o, dir = auth, flow.Server
		}
		in := rec(dir, o, 1, 2)
		in.Record.ConnID = uint64(i)
		in.Record.LocalPort, in.Record.RemotePort = uint16(40000+i), 8080
		if dir == flow.Server {
			in.Record.LocalPort, in.Record.RemotePort = 8080, uint16(40000+i)
		}
		ins = append(ins, in)
	}
	h.add(ins...)
	h.advance(100)
	if len(h.out) != 5 {
		t.Fatalf("%d connections written, want 5: %v", len(h.out), names(h.out))
	}
	for _, c := range h.out {
		local := c.Client
		if c.Observed == "server" {
			local = c.Server
		}
		if want := map[string]string{"client": "shop/cart", "server": "shop/auth"}[c.Observed]; local.Name() != want {
			t.Errorf("%s: local end %s, want %s", c.ConnKey, local.Name(), want)
		}
	}
}

// TestFlushAfterALongPause: a clock that jumps past the whole wheel still decides every record.
func TestFlushAfterALongPause(t *testing.T) {
	h := newHarness(t, Config{Window: 10 * time.Second, JoinWait: 5 * time.Second})
	h.heartbeat(cart, cartIP, 0, 1000)
	h.heartbeat(auth, authIP, 0, 1000)
	h.add(rec(flow.Client, cart, 1, 2))
	h.advance(500)
	if diff := cmp.Diff([]string{"client shop/cart -> shop/auth"}, names(h.out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if h.a.Held() != 0 {
		t.Errorf("held = %d", h.a.Held())
	}
}

// TestHostNetworkPodByHeartbeatPort: the agent's exporter reports its host-network listener
// as (node address, port) in its heartbeats, so a client of the agent is attributed to it
// even when the agent's own record of the connection never comes; the node's other ports
// stay the node's. The agent's own record is flagged host network: its local end claims
// (address, port), never the node's address.
func TestHostNetworkPodByHeartbeatPort(t *testing.T) {
	h := newHarness(t, Config{JoinWait: time.Second})
	agent := pod("agent-x", "uid-agent", "n2")
	h.heartbeat(cart, cartIP, 0, 100)
	hb := &flowbatch.Heartbeat{Node: "n2", Time: at(100), Ownerships: []flowbatch.Ownership{
		{Addr: netip.MustParseAddr(authIP), Workload: flow.Workload{Kind: flow.KindHost}, From: at(0)},
		{Addr: netip.MustParseAddr(authIP), Port: 8080, Workload: flow.Workload{Kind: flow.KindPod, PodUID: agent.PodUID}, Namespace: "shop", PodName: agent.Pod, From: at(0)},
		{Addr: netip.MustParseAddr(authIP), Port: 10250, Workload: flow.Workload{Kind: flow.KindHost}, From: at(0)},
	}}
	NewConsumer(h.a).Apply(&flowbatch.Batch{Header: flowbatch.Header{ExporterID: "exp-n2", NodeName: "n2"}, Heartbeat: hb})
	cl := rec(flow.Client, cart, 12, 13)
	cl.Record.LocalPort = 40100
	other := rec(flow.Client, cart, 12, 13)
	other.Record.LocalPort, other.Record.RemotePort = 40101, 22
	srv := rec(flow.Server, agent, 30, 31)
	srv.Record.LocalPort, srv.Record.RemotePort = 8080, 40102
	srv.Record.HostNetwork = true
	h.add(cl, other, srv)
	h.advance(120)
	want := []string{"client shop/cart -> shop/", "client shop/cart -> node/n2", "server shop/cart -> shop/"} // named by the exporter only: no workload
	if diff := cmp.Diff(want, names(h.out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, i := range []int{0, 2} {
		if i < len(h.out) && (h.out[i].Server.PodUID != agent.PodUID || h.out[i].Server.Pod != agent.Pod) {
			t.Errorf("connection %d: server %+v, want pod %s", i, h.out[i].Server, agent.Pod)
		}
	}
	if r := h.store.Lookup(netip.MustParseAddr(authIP), 0, at(30.5), true); r.Owner.Kind != flow.EndpointNode {
		t.Errorf("the node's address after the host-network record: %+v", r)
	}
}
