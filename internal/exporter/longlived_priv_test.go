package exporter

import (
	"net"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/exporter/flowtable"
	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/testnet"
)

// sumSide sums a connection side's records (all with the same conn id).
func sumSide(t *testing.T, recs []flow.Record) (sent, recv uint64, interims int) {
	t.Helper()
	for i, r := range recs {
		if r.ConnID != recs[0].ConnID || !r.Start.Equal(recs[0].Start) {
			t.Errorf("record %d: conn id/start not stable: %+v", i, r)
		}
		sent += r.BytesSent
		recv += r.BytesReceived
		if r.Interim {
			interims++
			if r.Outcome != flow.Open {
				t.Errorf("interim record with outcome %s", r.Outcome)
			}
		}
	}
	if last := recs[len(recs)-1]; last.Interim {
		t.Errorf("last record is interim: %+v", last)
	}
	return sent, recv, interims
}

func TestInterimRecordsSumToTotal(t *testing.T) {
	cli, srv, p := pairEndpoints(t, false)
	r := startExporter(t, Config{Table: flowtable.Config{Interval: 2 * time.Second}, SnapshotEvery: 500 * time.Millisecond}, tracer.Config{})
	ln := listen(t, srv, p.B.Addr4)
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		n, err := testnet.ReadToEOF(c)
		if err == nil && n != 6*100_000 {
			err = errTotal(n)
		}
		served <- err
	}()
	c, err := dial(t, cli, ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for range 6 { // 6 × 100 kB over ~6 s: at least two interim records on each side
		if err := testnet.WriteN(c, 100_000); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	cport, sport := uint16(c.LocalAddr().(*net.TCPAddr).Port), uint16(ln.Addr().(*net.TCPAddr).Port)
	c.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	sides(t, r, cport, sport) // both finals are in
	for _, side := range []struct {
		name       string
		lport      uint16
		sent, recv uint64
	}{{"client", cport, 600_000, 0}, {"server", sport, 0, 600_000}} {
		recs := r.cap.matching(func(f *flow.Record) bool {
			return f.LocalPort == side.lport && f.Netns != 0 && (f.RemotePort == cport || f.RemotePort == sport)
		})
		sent, recv, interims := sumSide(t, recs)
		t.Logf("%s: %d records, %d interim", side.name, len(recs), interims)
		for _, r := range recs {
			if !r.StartKnown || r.Direction == flow.DirectionUnknown {
				t.Errorf("%s: a connection opened under the exporter lost its start or role: %+v", side.name, r)
			}
		}
		if interims < 2 {
			t.Errorf("%s: %d interim records, want ≥ 2", side.name, interims)
		}
		if sent != side.sent || recv != side.recv {
			t.Errorf("%s: records sum to %d/%d, want %d/%d", side.name, sent, recv, side.sent, side.recv)
		}
	}
}

type errTotal int64

func (e errTotal) Error() string { return "server read a wrong total" }

func TestConnectionOpenBeforeStartIsReported(t *testing.T) {
	cli, srv, p := pairEndpoints(t, false)
	ln := listen(t, srv, p.B.Addr4)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := dial(t, cli, ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if err := testnet.WriteN(c, 70_000); err != nil { // before the exporter exists
		t.Fatal(err)
	}
	if err := testnet.ReadN(s, 70_000); err != nil {
		t.Fatal(err)
	}
	r := startExporter(t, Config{}, tracer.Config{})
	cport, sport := uint16(c.LocalAddr().(*net.TCPAddr).Port), uint16(ln.Addr().(*net.TCPAddr).Port)
	first := r.cap.waitFor(t, 2, 10*time.Second, func(f *flow.Record) bool {
		return f.Interim && (f.LocalPort == cport && f.RemotePort == sport || f.LocalPort == sport && f.RemotePort == cport)
	})
	for _, f := range first {
		if f.StartKnown {
			t.Errorf("a socket older than the exporter claims a known start: %+v", f)
		}
		wantDir, wantSent := flow.Server, uint64(0)
		if f.LocalPort == cport {
			wantDir, wantSent = flow.Client, 70_000
		}
		if f.Direction != wantDir || f.BytesSent != wantSent {
			t.Errorf("pre-existing record: %+v", f)
		}
	}
	if err := testnet.WriteN(s, 5_000); err != nil {
		t.Fatal(err)
	}
	if err := testnet.ReadN(c, 5_000); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := testnet.ReadToEOF(s); err != nil {
		t.Fatal(err)
	}
	s.Close()
	sides(t, r, cport, sport)
	recs := r.cap.matching(func(f *flow.Record) bool { return f.LocalPort == cport && f.RemotePort == sport })
	sent, recv, _ := sumSide(t, recs)
	if sent != 70_000 || recv != 5_000 {
		t.Errorf("client records sum to %d/%d, want 70000/5000", sent, recv)
	}
}
