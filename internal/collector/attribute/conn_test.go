package attribute

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flowscope/flowscope/internal/flow"
)

// TestConnWritesEveryField: a connection is written into output storage that still holds an
// earlier flush's connections (newConn does not clear the slot), so every emitter must write
// every field. The same connections — joined, translated, single-sided from either side, to
// an unattributed or external peer, from a host workload or an unknown pod — are emitted once
// into fresh storage and once into storage filled with garbage; they must be equal.
func TestConnWritesEveryField(t *testing.T) {
	garbage := garbageConn(t)
	run := func(storage []flow.Conn) []flow.Conn {
		h := newHarness(t, Config{JoinWait: 5 * time.Second})
		h.a.out, h.a.spare = storage[:0:32], storage[32:32] // (a flush writes into one, the next into the other)
		vip := h.withAuthService()
		h.add(rec(flow.Client, cart, 10, 11), rec(flow.Server, auth, 10, 12)) // joined
		nat := rec(flow.Client, cart, 10, 11)                                 // joined, translated
		nat.Record.ConnID, nat.Record.LocalPort, nat.Record.RemoteAddr, nat.Record.RemotePort = 8, 40001, vip, 80
		nat.Record.NatRemoteAddr, nat.Record.NatRemotePort = netip.MustParseAddr(authIP), 8080
		natSrv := rec(flow.Server, auth, 10, 11)
		natSrv.Record.ConnID, natSrv.Record.RemotePort = 9, 40001
		h.add(nat, natSrv)
		alone := rec(flow.Client, cart, 10, 11) // single, translated
		alone.Record.ConnID, alone.Record.LocalPort, alone.Record.RemoteAddr, alone.Record.RemotePort = 10, 40002, vip, 80
		alone.Record.NatRemoteAddr, alone.Record.NatRemotePort = netip.MustParseAddr(authIP), 8080
		ext := rec(flow.Client, cart, 10, 11) // single, external
		ext.Record.ConnID, ext.Record.LocalPort, ext.Record.RemoteAddr = 11, 40003, netip.MustParseAddr("93.184.216.34")
		srv := rec(flow.Server, auth, 10, 11) // single, server side, from an unclaimed client
		srv.Record.ConnID, srv.Record.RemoteAddr, srv.Record.RemotePort = 12, netip.MustParseAddr("10.244.7.7"), 50000
		host := rec(flow.Client, cart, 10, 11) // a host workload's socket
		host.Record.ConnID, host.Record.LocalPort = 13, 40004
		host.Record.Workload = flow.Workload{Kind: flow.KindHost, Comm: "curl"}
		unknown := rec(flow.Client, cart, 10, 11) // a pod nobody names
		unknown.Record.ConnID, unknown.Record.LocalPort, unknown.Record.Workload.PodUID = 14, 40005, "uid-nobody"
		h.add(alone, ext, srv, host, unknown)
		h.advance(12)
		h.advance(80)
		return h.out
	}
	want := run(make([]flow.Conn, 64)) // cleared storage
	storage := make([]flow.Conn, 64)
	for i := range storage {
		storage[i] = garbage
	}
	got := run(storage)
	if len(want) < 7 {
		t.Fatalf("the scenario emits %d connections: %v", len(want), names(want))
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("written over garbage (-fresh +garbage):\n%s", diff)
	}
}

// garbageConn is a connection with every field, and every field of its endpoints, set.
func garbageConn(t *testing.T) flow.Conn {
	var c flow.Conn
	fillGarbage(reflect.ValueOf(&c).Elem())
	v := reflect.ValueOf(c)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("garbage leaves %s zero", v.Type().Field(i).Name)
		}
	}
	return c
}

func fillGarbage(v reflect.Value) {
	switch v.Interface().(type) {
	case time.Time:
		v.Set(reflect.ValueOf(time.Unix(7, 7)))
		return
	case netip.Addr:
		v.Set(reflect.ValueOf(netip.MustParseAddr("192.0.2.7")))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fillGarbage(v.Field(i))
		}
	case reflect.String:
		v.SetString("garbage")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillGarbage(v.Elem())
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(reflect.ValueOf("garbage"), reflect.ValueOf("garbage"))
	}
}

// A connection observed from one side carries that side's counters oriented client → server:
// a client's bytes sent go to the server, a server's bytes sent go to the client.
func TestSingleSidedCounters(t *testing.T) {
	for _, dir := range []flow.Direction{flow.Client, flow.Server} {
		h := newHarness(t, Config{JoinWait: 5 * time.Second})
		h.heartbeat(cart, cartIP, 0, 100)
		h.heartbeat(auth, authIP, 0, 100)
		in := rec(dir, cart, 10, 11)
		if dir == flow.Server {
			in = rec(dir, auth, 10, 11)
		}
		in.Record.Retransmits, in.Record.BytesRetransmitted = 3, 4000
		h.add(in)
		h.advance(30)
		if len(h.out) != 1 {
			t.Fatalf("%s: %d connections written", dir, len(h.out))
		}
		c, r := h.out[0], in.Record
		c2s, s2c := r.BytesSent, r.BytesReceived
		if dir == flow.Server {
			c2s, s2c = r.BytesReceived, r.BytesSent
		}
		if c.Observed != string(dir) || c.BytesClientToServer != c2s || c.BytesServerToClient != s2c || c.Retransmits != 3 || c.BytesRetransmitted != 4000 {
			t.Errorf("%s: observed %s, %d bytes to the server, %d to the client, %d retransmits (%d bytes); want %d, %d, 3 (4000)",
				dir, c.Observed, c.BytesClientToServer, c.BytesServerToClient, c.Retransmits, c.BytesRetransmitted, c2s, s2c)
		}
	}
}
