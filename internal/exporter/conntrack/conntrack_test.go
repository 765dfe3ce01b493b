package conntrack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowscope/flowscope/internal/flow"
)

// fakeTable answers from a map of original destination → reply source.
type fakeTable struct {
	nat  map[netip.AddrPort]netip.AddrPort
	gets int
}

func (f *fakeTable) Get(q Tuple) (Tuple, error) {
	f.gets++
	to, ok := f.nat[netip.AddrPortFrom(q.Dst, q.DstPort)]
	if !ok {
		return Tuple{}, unix.ENOENT
	}
	return Tuple{Src: to.Addr(), SrcPort: to.Port(), Dst: q.Src, DstPort: q.SrcPort}, nil
}

func (f *fakeTable) Close() error { return nil }

func client(id uint64, netns uint32, to string, interim bool) flow.Record {
	ap := netip.MustParseAddrPort(to)
	return flow.Record{ConnID: id, Direction: flow.Client, Netns: netns, Interim: interim,
		LocalAddr: netip.MustParseAddr("10.244.1.5"), LocalPort: uint16(40000 + id), RemoteAddr: ap.Addr(), RemotePort: ap.Port()}
}

func TestTranslateCachesAndBounds(t *testing.T) {
	tb := &fakeTable{nat: map[netip.AddrPort]netip.AddrPort{
		netip.MustParseAddrPort("10.96.0.10:80"): netip.MustParseAddrPort("10.244.2.7:8080"),
		netip.MustParseAddrPort("10.96.0.11:80"): netip.MustParseAddrPort("10.96.0.11:80"), // tracked, not translated
	}}
	now := time.Unix(1000, 0)
	tr := New(Config{MaxLookupsPerSecond: 3}, func(string) (Table, error) { return tb, nil }, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	paths := map[uint32]string{7: "/proc/1/ns/net"}
	recs := []flow.Record{
		client(1, 7, "10.96.0.10:80", true),
		client(2, 7, "10.96.0.11:80", false),
		client(3, 7, "10.244.3.3:9000", false),
		{ConnID: 4, Direction: flow.Server, Netns: 7, LocalAddr: netip.MustParseAddr("10.244.1.5"), RemoteAddr: netip.MustParseAddr("10.244.9.9")},
		client(5, 7, "10.96.0.10:80", false), // over the bound
		client(6, 8, "10.96.0.10:80", false), // a namespace without a path
	}
	tr.Translate(recs, paths)
	want := []string{"10.244.2.7:8080", "", "", "", "", ""}
	for i, r := range recs {
		got := ""
		if r.NatRemoteAddr.IsValid() {
			got = netip.AddrPortFrom(r.NatRemoteAddr, r.NatRemotePort).String()
		}
		if got != want[i] {
			t.Errorf("record %d: translation %q, want %q", r.ConnID, got, want[i])
		}
	}
	if s := tr.Stats(); s.Lookups != 3 || s.Translated != 1 || s.NotTracked != 1 || s.Skipped != 2 {
		t.Errorf("stats %+v", s)
	}
	// The next record of connection 1 (its final) comes from the cache, even over the bound.
	fin := []flow.Record{client(1, 7, "10.96.0.10:80", false)}
	tr.Translate(fin, paths)
	if !fin[0].NatRemoteAddr.IsValid() || tb.gets != 4 /* 3 lookups and the probe */ {
		t.Errorf("final record: %+v after %d queries", fin[0], tb.gets)
	}
	if len(tr.cache) != 0 {
		t.Errorf("cache keeps %d entries after the final record", len(tr.cache))
	}
	// A destination seen untranslated is not asked about again for a while.
	now = now.Add(time.Second)
	gets := tb.gets
	tr.Translate([]flow.Record{client(7, 7, "10.96.0.11:80", false)}, paths)
	if s := tr.Stats(); tb.gets != gets || s.Plain != 1 {
		t.Errorf("an untranslated destination was asked about again: %d queries, stats %+v", tb.gets-gets, s)
	}
	now = now.Add(2 * time.Minute)
	tr.Translate([]flow.Record{client(8, 7, "10.96.0.11:80", false)}, paths)
	if tb.gets != gets+1 {
		t.Errorf("not asked again after PlainFor: %d queries", tb.gets-gets)
	}
	// A destination conntrack has no entry for (10.244.3.3:9000, record 3) is asked about
	// again only after MissFor (10 s), not on every connection.
	gets = tb.gets
	tr.Translate([]flow.Record{client(9, 7, "10.244.3.3:9000", false)}, paths)
	if tb.gets != gets+1 { // 2 min after record 3: asked again
		t.Errorf("an untracked destination was not asked about after MissFor: %d queries", tb.gets-gets)
	}
	now = now.Add(5 * time.Second)
	tr.Translate([]flow.Record{client(10, 7, "10.244.3.3:9000", false)}, paths)
	if tb.gets != gets+1 {
		t.Errorf("an untracked destination was asked about again within MissFor: %d queries", tb.gets-gets-1)
	}
	now = now.Add(6 * time.Second)
	tr.Translate([]flow.Record{client(11, 7, "10.244.3.3:9000", false)}, paths)
	if tb.gets != gets+2 {
		t.Errorf("not asked again after MissFor: %d queries", tb.gets-gets)
	}
	// A namespace that disappears is closed.
	tr.Translate(nil, map[uint32]string{})
	if len(tr.tables) != 0 {
		t.Errorf("%d tables open after their namespaces went", len(tr.tables))
	}
}

// TestWithoutConntrackWarnsOnce: when conntrack cannot be reached, records go untranslated,
// one warning is logged for all namespaces, and a namespace is retried only after Retry.
func TestWithoutConntrackWarnsOnce(t *testing.T) {
	var logs bytes.Buffer
	opens := 0
	now := time.Unix(1000, 0)
	tr := New(Config{Retry: time.Minute}, func(string) (Table, error) {
		opens++
		return nil, errors.New("netlink: protocol not supported")
	}, func() time.Time { return now }, slog.New(slog.NewTextHandler(&logs, nil)))
	paths := map[uint32]string{7: "/a", 8: "/b"}
	for range 3 {
		recs := []flow.Record{client(1, 7, "10.96.0.10:80", false), client(2, 8, "10.96.0.10:80", false)}
		tr.Translate(recs, paths)
		if recs[0].NatRemoteAddr.IsValid() || recs[1].NatRemoteAddr.IsValid() {
			t.Fatal("translated without conntrack")
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
	if opens != 2 {
		t.Errorf("%d opens, want one per namespace", opens)
	}
	now = now.Add(2 * time.Minute)
	tr.Translate([]flow.Record{client(3, 7, "10.96.0.10:80", false)}, paths)
	if opens != 3 {
		t.Errorf("%d opens after the retry delay, want 3", opens)
	}
}

// TestQueryEncoding: a request carries the original tuple as ctnetlink nests it, for IPv4 and
// IPv6; an error ack ends the answer with its errno.
func TestQueryEncoding(t *testing.T) {
	for _, q := range []Tuple{
		{Src: netip.MustParseAddr("10.244.1.5"), Dst: netip.MustParseAddr("10.96.0.10"), SrcPort: 40001, DstPort: 80},
		{Src: netip.MustParseAddr("fd00::5"), Dst: netip.MustParseAddr("fd00:96::10"), SrcPort: 40002, DstPort: 443},
	} {
		b := appendGet(nil, 7, q)
		if got := int(binary.NativeEndian.Uint32(b)); got != len(b) {
			t.Fatalf("length %d, message of %d bytes", got, len(b))
		}
		got, ok := findTuple(b[unix.SizeofNlMsghdr+4:], ctaTupleOrig)
		if !ok || got != q {
			t.Errorf("encoded tuple %+v, want %+v", got, q)
		}
	}
	rt := &rawTable{seq: 9}
	ack := binary.NativeEndian.AppendUint32(nil, 20)
	ack = binary.NativeEndian.AppendUint16(ack, unix.NLMSG_ERROR)
	ack = binary.NativeEndian.AppendUint16(ack, 0)
	ack = binary.NativeEndian.AppendUint32(ack, 9)
	ack = binary.NativeEndian.AppendUint32(ack, 0)
	ack = binary.NativeEndian.AppendUint32(ack, uint32(0xffffffff-uint32(unix.ENOENT)+1)) // -ENOENT
	var reply Tuple
	found := false
	done, err := rt.parse(ack, &reply, &found)
	if !done || !errors.Is(err, unix.ENOENT) {
		t.Errorf("error ack: done %v, err %v", done, err)
	}
}
