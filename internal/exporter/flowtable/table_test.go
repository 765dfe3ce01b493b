package flowtable

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

type fakeResolver struct{}

func (fakeResolver) Workload(cg uint64, pid uint32, comm string) flow.Workload {
	return flow.Workload{Kind: flow.KindCgroup, CgroupPath: "/test", Pid: pid, Comm: comm}
}

var epoch = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func wall(ns uint64) time.Time { return epoch.Add(time.Duration(ns)) }

const sec = uint64(time.Second)

func newTable(cfg Config) *Table { return New(cfg, fakeResolver{}, wall) }

// ev returns a client-side event of a loopback connection 127.0.0.1:40000 → :80.
func ev(kind tracer.Kind, state uint8, flags uint16, acked, rcvd uint64) tracer.Event {
	e := tracer.Event{Kind: kind, State: state, Flags: flags, Key: 11, SkAddr: 0xffff1000, Family: unix.AF_INET,
		Sport: 40000, Dport: 80, Netns: 4026531840, CgroupID: 5, BytesAcked: acked, BytesReceived: rcvd}
	copy(e.Saddr[:], netip.MustParseAddr("127.0.0.1").AsSlice())
	copy(e.Daddr[:], netip.MustParseAddr("127.0.0.2").AsSlice())
	return e
}

func TestPayloadAndOutcome(t *testing.T) {
	const active, passive, known = tracer.FlagActive, tracer.FlagPassive, tracer.FlagStartKnown
	fin := tracer.FlagFinRcvd | tracer.FlagFinAcked
	cases := []struct {
		name              string
		state             uint8
		flags             uint16
		acked, rcvd       uint64
		skErr             unix.Errno
		resetsRecv        uint8
		sent, recv        uint64
		outcome           flow.Outcome
		dir               flow.Direction
		resetsSentInfered uint32
	}{
		{"client active close", tracer.StateFinWait2, active | known | fin, 1_000_002, 3_000_001, 0, 0, 1_000_000, 3_000_000, flow.OK, flow.Client, 0},
		{"server passive close", tracer.StateLastAck, passive | known | fin, 3_000_001, 1_000_001, 0, 0, 3_000_000, 1_000_000, flow.OK, flow.Server, 0},
		{"client passive close", tracer.StateLastAck, active | known | fin, 1_000_002, 3_000_001, 0, 0, 1_000_000, 3_000_000, flow.OK, flow.Client, 0},
		{"refused", tracer.StateSynSent, active | known, 0, 0, unix.ECONNREFUSED, 1, 0, 0, flow.Refused, flow.Client, 0},
		{"connect timeout", tracer.StateSynSent, active | known, 0, 0, 0, 0, 0, 0, flow.Timeout, flow.Client, 0},
		{"kernel timeout", tracer.StateSynSent, active | known, 0, 0, unix.ETIMEDOUT, 0, 0, 0, flow.Timeout, flow.Client, 0},
		{"reset by peer", tracer.StateEstablished, active | known | tracer.FlagFinAcked, 501, 200, unix.ECONNRESET, 1, 500, 200, flow.Reset, flow.Client, 0},
		{"abort linger 0", tracer.StateEstablished, passive | known | tracer.FlagFinAcked, 700, 100, 0, 0, 700, 100, flow.Aborted, flow.Server, 1},
		{"abort after peer FIN", tracer.StateCloseWait, passive | known | tracer.FlagFinRcvd, 10, 11, 0, 0, 10, 10, flow.Aborted, flow.Server, 1},
		{"FIN unacked then reset", tracer.StateFinWait1, active | known | tracer.FlagFinRcvd, 51, 21, unix.ECONNRESET, 1, 50, 20, flow.Reset, flow.Client, 0},
		{"server handshake timeout", tracer.StateSynRecv, passive | known, 0, 0, 0, 0, 0, 0, flow.Timeout, flow.Server, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTable(Config{})
			e := ev(tracer.KindClose, tc.state, tc.flags, tc.acked, tc.rcvd)
			e.SkErr, e.ResetsReceived = uint16(tc.skErr), tc.resetsRecv
			e.StartNs, e.EndNs = 1*sec, 2*sec
			out := tb.Apply([]tracer.Event{e}, nil)
			if len(out) != 0 {
				t.Fatalf("close released before the next cycle: %v", out)
			}
			out = tb.Apply(nil, nil)
			if len(out) != 1 {
				t.Fatalf("got %d records", len(out))
			}
			r := out[0]
			if r.BytesSent != tc.sent || r.BytesReceived != tc.recv {
				t.Errorf("sent/recv = %d/%d, want %d/%d", r.BytesSent, r.BytesReceived, tc.sent, tc.recv)
			}
			if r.Outcome != tc.outcome || r.Direction != tc.dir {
				t.Errorf("outcome/direction = %s/%s, want %s/%s", r.Outcome, r.Direction, tc.outcome, tc.dir)
			}
			if r.ResetsSent != tc.resetsSentInfered {
				t.Errorf("resets_sent = %d, want %d", r.ResetsSent, tc.resetsSentInfered)
			}
			if r.Start != wall(1*sec) || r.End != wall(2*sec) || !r.StartKnown || r.Interim {
				t.Errorf("times/flags wrong: %+v", r)
			}
			if r.LocalAddr.String() != "127.0.0.1" || r.RemotePort != 80 || r.Family != flow.IPv4 {
				t.Errorf("addresses wrong: %+v", r)
			}
		})
	}
}

func TestInterimDeltasSumToTotal(t *testing.T) {
	tb := newTable(Config{Interval: 30 * time.Second, ResetEvents: true})
	flags := tracer.FlagActive | tracer.FlagStartKnown
	snap := func(at uint64, acked, rcvd uint64) []flow.Record {
		e := ev(tracer.KindSnapshot, tracer.StateEstablished, flags, acked, rcvd)
		e.StartNs, e.EndNs = 1*sec, at
		tb.BeginPass(at)
		out := tb.SnapshotChunk(e.Netns, []tracer.Event{e}, nil)
		return tb.EndPass(func(uint32) bool { return true }, out)
	}
	var all []flow.Record
	all = append(all, snap(10*sec, 1001, 500)...) // younger than the interval: nothing yet
	if len(all) != 0 {
		t.Fatalf("interim before the interval: %v", all)
	}
	all = append(all, snap(31*sec, 100_001, 50_000)...)
	all = append(all, snap(45*sec, 150_001, 60_000)...) // last record 14 s ago: not due
	all = append(all, snap(62*sec, 200_001, 70_000)...)
	if len(all) != 2 {
		t.Fatalf("got %d interim records, want 2", len(all))
	}
	close := ev(tracer.KindClose, tracer.StateFinWait2, flags|tracer.FlagFinAcked|tracer.FlagFinRcvd, 300_002, 80_001)
	close.StartNs, close.EndNs = 1*sec, 70*sec
	tb.Apply([]tracer.Event{close}, nil)
	all = tb.Apply(nil, all)
	var sent, recv uint64
	for _, r := range all {
		sent += r.BytesSent
		recv += r.BytesReceived
		if r.ConnID != 11 || r.Start != wall(1*sec) {
			t.Errorf("conn id/start not stable: %+v", r)
		}
	}
	if sent != 300_000 || recv != 80_000 {
		t.Fatalf("sum of records = %d/%d, want 300000/80000", sent, recv)
	}
	want := []uint64{100_000, 100_000, 100_000}
	got := []uint64{all[0].BytesSent, all[1].BytesSent, all[2].BytesSent}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("per-record sent (-want +got): %s", d)
	}
	if !all[0].Interim || !all[1].Interim || all[2].Interim || all[0].Outcome != flow.Open || all[2].Outcome != flow.OK {
		t.Errorf("interim flags/outcomes wrong: %v %v %v", all[0].Interim, all[1].Interim, all[2].Interim)
	}
}

func TestPreexistingConnectionReportedAtOnce(t *testing.T) {
	tb := newTable(Config{})
	listener := ev(tracer.KindListen, tracer.StateListen, 0, 0, 0)
	listener.Sport = 80
	e := ev(tracer.KindSnapshot, tracer.StateEstablished, 0, 5001, 7000) // no slot: opened before us
	e.EndNs = 100 * sec
	tb.BeginPass(100 * sec)
	out := tb.SnapshotChunk(e.Netns, []tracer.Event{e, listener}, nil) // the listener comes after: inference waits for EndPass
	out = tb.EndPass(func(uint32) bool { return true }, out)
	if len(out) != 1 {
		t.Fatalf("got %d records", len(out))
	}
	r := out[0]
	if r.StartKnown || r.Direction != flow.Client || r.BytesSent != 5000 || r.BytesReceived != 7000 {
		t.Fatalf("unexpected record %+v", r)
	}
}

func TestCloseAfterSnapshotReportsTheRest(t *testing.T) {
	tb := newTable(Config{})
	e := ev(tracer.KindSnapshot, tracer.StateEstablished, 0, 5001, 7000) // predates us: reported at once
	tb.BeginPass(100 * sec)
	out := tb.SnapshotChunk(e.Netns, []tracer.Event{e}, nil)
	out = tb.EndPass(func(uint32) bool { return true }, out)
	c := ev(tracer.KindClose, tracer.StateFinWait2, tracer.FlagFinAcked|tracer.FlagFinRcvd, 5003, 7001)
	c.EndNs = 100*sec + 5
	tb.Apply([]tracer.Event{c}, nil)
	out = tb.Apply(nil, out)
	if len(out) != 2 || out[1].BytesSent != 1 || out[1].BytesReceived != 0 || out[0].BytesSent != 5000 {
		t.Fatalf("records %+v", out)
	}
	if tb.Stats().Tracked != 0 {
		t.Fatalf("stats %+v", tb.Stats())
	}
}

func TestResetAfterCloseCounted(t *testing.T) {
	tb := newTable(Config{ResetEvents: true})
	c := ev(tracer.KindClose, tracer.StateEstablished, tracer.FlagPassive|tracer.FlagStartKnown, 1, 0)
	tb.Apply([]tracer.Event{c}, nil)
	rst := tracer.Event{Kind: tracer.KindResetSent, Key: c.Key}
	out := tb.Apply([]tracer.Event{rst}, nil)
	if len(out) != 1 || out[0].ResetsSent != 1 || out[0].Outcome != flow.Aborted {
		t.Fatalf("got %+v", out)
	}
}

func TestFallbackPairsOpenAndClose(t *testing.T) {
	tb := newTable(Config{KeyBySocketAddr: true})
	o := tracer.Event{Kind: tracer.KindOpen, SkAddr: 0xabc, Key: 0xabc, StartNs: 3 * sec, Flags: tracer.FlagActive | tracer.FlagStartKnown}
	c := ev(tracer.KindClose, tracer.StateFinWait2, tracer.FlagFinAcked|tracer.FlagFinRcvd, 11, 21)
	c.SkAddr, c.Key, c.EndNs = 0xabc, 0xabc, 4*sec
	tb.Apply([]tracer.Event{o, c}, nil)
	out := tb.Apply(nil, nil)
	if len(out) != 1 {
		t.Fatalf("got %d", len(out))
	}
	r := out[0]
	if r.Direction != flow.Client || r.Start != wall(3*sec) || !r.StartKnown || r.BytesSent != 9 || r.BytesReceived != 20 || r.ConnID == 0 {
		t.Fatalf("got %+v", r)
	}
	if tb.Stats().OpensPending != 0 {
		t.Fatal("open not consumed")
	}
}

// TestFallbackSnapshotBeforeOpen: with the fallback hooks a snapshot pass can list a socket
// whose open event is still in the ring (events are not applied during a pass). The socket is
// not reported as one that predates the exporter: once the open arrives it takes the open's
// id, start and role, and its records add up to its bytes exactly. A socket listed by two
// passes with no open is one that predates the exporter, reported from the second.
func TestFallbackSnapshotBeforeOpen(t *testing.T) {
	alive := func(uint32) bool { return true }
	pass := func(tb *Table, e tracer.Event, at uint64) []flow.Record {
		tb.BeginPass(at)
		e.EndNs = at
		return tb.EndPass(alive, tb.SnapshotChunk(e.Netns, []tracer.Event{e}, nil))
	}
	sum := func(recs []flow.Record) (sent uint64) {
		for _, r := range recs {
			sent += r.BytesSent
		}
		return sent
	}
	t.Run("open applied after the pass", func(t *testing.T) {
		tb := newTable(Config{KeyBySocketAddr: true})
		// both ports ephemeral: the role cannot be guessed from them
		snap := ev(tracer.KindSnapshot, tracer.StateEstablished, 0, 1_000_001, 0)
		snap.SkAddr, snap.Key, snap.Dport = 0xabc, 0xabc, 45000
		if out := pass(tb, snap, 5*sec); len(out) != 0 {
			t.Fatalf("reported at once: %+v", out)
		}
		o := tracer.Event{Kind: tracer.KindOpen, SkAddr: 0xabc, Key: 0xabc, StartNs: 4 * sec, Flags: tracer.FlagActive | tracer.FlagStartKnown}
		c := ev(tracer.KindClose, tracer.StateFinWait2, tracer.FlagFinAcked|tracer.FlagFinRcvd, 1_000_002, 21)
		c.SkAddr, c.Key, c.Dport, c.EndNs = 0xabc, 0xabc, 45000, 20*sec
		tb.Apply([]tracer.Event{o, c}, nil)
		recs := tb.Apply(nil, nil)
		if len(recs) != 1 || sum(recs) != 1_000_000 || recs[0].Direction != flow.Client || !recs[0].StartKnown || recs[0].Start != wall(4*sec) {
			t.Fatalf("records %+v", recs)
		}
	})
	t.Run("no open: predates the exporter", func(t *testing.T) {
		tb := newTable(Config{KeyBySocketAddr: true})
		snap := ev(tracer.KindSnapshot, tracer.StateEstablished, 0, 1_000_001, 0)
		snap.SkAddr, snap.Key = 0xabc, 0xabc
		if out := pass(tb, snap, 5*sec); len(out) != 0 {
			t.Fatalf("reported at once: %+v", out)
		}
		recs := pass(tb, snap, 15*sec)
		if len(recs) != 1 || recs[0].StartKnown || !recs[0].Interim || recs[0].Direction != flow.Client {
			t.Fatalf("second pass: %+v", recs)
		}
		c := ev(tracer.KindClose, tracer.StateFinWait2, tracer.FlagFinAcked|tracer.FlagFinRcvd, 1_000_002, 21)
		c.SkAddr, c.Key, c.EndNs = 0xabc, 0xabc, 20*sec
		tb.Apply([]tracer.Event{c}, nil)
		recs = append(recs, tb.Apply(nil, nil)...)
		if len(recs) != 2 || sum(recs) != 1_000_000 || recs[1].ConnID != recs[0].ConnID {
			t.Fatalf("records %+v", recs)
		}
	})
}

func TestTableFullAndVanished(t *testing.T) {
	tb := newTable(Config{MaxConns: 1})
	a := ev(tracer.KindSnapshot, tracer.StateEstablished, 0, 1, 0)
	b := a
	b.Key = 12
	a.Flags, b.Flags = tracer.FlagActive, tracer.FlagActive
	alive := func(uint32) bool { return true }
	tb.BeginPass(10 * sec)
	tb.EndPass(alive, tb.SnapshotChunk(a.Netns, []tracer.Event{a, b}, nil))
	if s := tb.Stats(); s.TableFull != 1 || s.Tracked != 1 {
		t.Fatalf("stats %+v", s)
	}
	for i := range 2 {
		tb.BeginPass(uint64(20+i) * sec)
		tb.EndPass(alive, tb.SnapshotChunk(a.Netns, nil, nil))
	}
	if s := tb.Stats(); s.Vanished != 1 || s.Tracked != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestInferDirection(t *testing.T) {
	tb := newTable(Config{})
	l := ev(tracer.KindListen, tracer.StateListen, 0, 0, 0)
	l.Netns, l.Sport = 99, 8080
	copy(l.Saddr[:4], []byte{10, 0, 0, 9})
	tb.BeginPass(1)
	tb.EndPass(func(uint32) bool { return true }, tb.SnapshotChunk(99, []tracer.Event{l}, nil))
	cases := []struct {
		name         string
		netns        uint32
		sport, dport uint16
		remote       [4]byte
		want         flow.Direction
	}{
		{"listener on local port", 99, 8080, 50000, [4]byte{10, 0, 0, 1}, flow.Server},
		{"bound listener on remote", 1, 50000, 8080, [4]byte{10, 0, 0, 9}, flow.Client},
		{"ephemeral local", 1, 40000, 443, [4]byte{10, 0, 0, 7}, flow.Client},
		{"ephemeral remote", 1, 5432, 40000, [4]byte{10, 0, 0, 7}, flow.Server},
		{"both high", 1, 61000, 62000, [4]byte{10, 0, 0, 7}, flow.Server},
	}
	for _, tc := range cases {
		e := ev(tracer.KindClose, tracer.StateFinWait2, 0, 0, 0)
		e.Netns, e.Sport, e.Dport = tc.netns, tc.sport, tc.dport
		copy(e.Daddr[:4], tc.remote[:])
		if got := tb.inferDirection(&e); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestServerTakesListenerProcess(t *testing.T) {
	tb := newTable(Config{ListenerOwner: func(ino uint64) (uint32, string, bool) {
		if ino == 77 {
			return 321, "nginx", true
		}
		return 0, "", false
	}})
	l := ev(tracer.KindListen, tracer.StateListen, 0, 0, 0)
	l.Sport, l.Inode = 40000, 77
	tb.BeginPass(1)
	tb.EndPass(func(uint32) bool { return true }, tb.SnapshotChunk(l.Netns, []tracer.Event{l}, nil))
	c := ev(tracer.KindClose, tracer.StateLastAck, tracer.FlagPassive|tracer.FlagStartKnown|tracer.FlagFinAcked|tracer.FlagFinRcvd, 2, 2)
	tb.Apply([]tracer.Event{c}, nil)
	out := tb.Apply(nil, nil)
	if len(out) != 1 || out[0].Workload.Pid != 321 || out[0].Workload.Comm != "nginx" {
		t.Fatalf("server record: %+v", out)
	}
}

// A socket opened after a pass began (its namespace read later in the pass) starts after the
// pass's time: it is young, not due.
func TestSocketOpenedDuringPassIsNotDue(t *testing.T) {
	tb := newTable(Config{Interval: 30 * time.Second})
	e := ev(tracer.KindSnapshot, tracer.StateEstablished, tracer.FlagActive|tracer.FlagStartKnown, 1001, 0)
	e.StartNs, e.EndNs = 100*sec+5, 100*sec+9
	tb.BeginPass(100 * sec)
	out := tb.EndPass(func(uint32) bool { return true }, tb.SnapshotChunk(e.Netns, []tracer.Event{e}, nil))
	if len(out) != 0 {
		t.Fatalf("a young socket got an interim record: %+v", out)
	}
}
