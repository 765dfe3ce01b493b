package tracer

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/testgate"
)

func openTracer(t *testing.T, cfg Config) *Tracer {
	t.Helper()
	testgate.BPF(t)
	tr, err := Open(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// loopbackTransfer makes one connection on 127.0.0.1, sends up bytes from the client and down
// bytes from the server, closes the client first, and returns the two ports.
func loopbackTransfer(t *testing.T, network, addr string, up, down int) (client, server uint16) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		if _, err := io.CopyN(io.Discard, c, int64(up)); err != nil {
			done <- err
			return
		}
		_, err = c.Write(make([]byte, down))
		if err == nil {
			_, err = io.Copy(io.Discard, c) // wait for the client's FIN
		}
		done <- err
	}()
	c, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, up)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, c, int64(down)); err != nil {
		t.Fatal(err)
	}
	client = uint16(c.LocalAddr().(*net.TCPAddr).Port)
	server = uint16(ln.Addr().(*net.TCPAddr).Port)
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return client, server
}

func TestTracerCloseEventsLoopback(t *testing.T) {
	for _, hook := range []Hook{HookTPBTF, HookRawTP, HookTracepoint} {
		t.Run(string(hook), func(t *testing.T) {
			tr := openTracer(t, Config{Hook: hook})
			if tr.Hook() != hook {
				t.Fatalf("hook = %s", tr.Hook())
			}
			cport, sport := loopbackTransfer(t, "tcp4", "127.0.0.1:0", 1_000_000, 3_000_000)
			var evs []Event
			deadline := time.Now().Add(5 * time.Second)
			var cl, sv *Event
			for time.Now().Before(deadline) && (cl == nil || sv == nil) {
				var err error
				evs, _, err = tr.ReadEvents(evs[:0], time.Now().Add(100*time.Millisecond), 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				for i := range evs {
					e := evs[i]
					if e.Kind != KindClose {
						continue
					}
					if e.Sport == cport && e.Dport == sport {
						cl = &e
					}
					if e.Sport == sport && e.Dport == cport {
						sv = &e
					}
				}
			}
			if cl == nil || sv == nil {
				t.Fatalf("close events missing: client %v server %v", cl, sv)
			}
			t.Logf("client %+v", *cl)
			t.Logf("server %+v", *sv)
			if cl.BytesAcked != 1_000_002 || cl.BytesReceived != 3_000_001 {
				t.Errorf("client acked/received = %d/%d", cl.BytesAcked, cl.BytesReceived)
			}
			if sv.BytesAcked != 3_000_001 || sv.BytesReceived != 1_000_001 {
				t.Errorf("server acked/received = %d/%d", sv.BytesAcked, sv.BytesReceived)
			}
			kc, err := tr.Counters()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("counters %v", kc.Counters)
		})
	}
}

func TestMissingOptionalHookDegradesOnly(t *testing.T) {
	tr := openTracer(t, Config{ProcessInfo: true, CgroupV2: "/nonexistent-cgroup2"})
	if d := tr.Degraded(); len(d) != 2 { // connect4 and connect6
		t.Fatalf("degraded = %q", d)
	}
	cport, sport := loopbackTransfer(t, "tcp6", "[::1]:0", 1000, 2000)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		evs, _, err := tr.ReadEvents(nil, time.Now().Add(100*time.Millisecond), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Kind == KindClose && e.Sport == cport && e.Dport == sport {
				return
			}
		}
	}
	t.Fatal("no close event with a degraded tracer")
}

// The reader waits in the runtime's poller; the kernel's forced wakeup, once the ring holds
// WakeBytes, must end that wait long before the deadline.
func TestForcedWakeupEndsTheWait(t *testing.T) {
	tr := openTracer(t, Config{WakeBytes: 4 * eventSize})
	if tr.waiter == nil {
		t.Fatal("the ring buffer is not waited for in the runtime's poller")
	}
	type result struct {
		n   int
		err error
		at  time.Duration
	}
	got := make(chan result, 1)
	start := time.Now()
	go func() {
		evs, _, err := tr.ReadEvents(nil, start.Add(20*time.Second), 1<<20)
		got <- result{len(evs), err, time.Since(start)}
	}()
	time.Sleep(200 * time.Millisecond) // let the reader park first
	for range 5 {
		loopbackTransfer(t, "tcp4", "127.0.0.1:0", 10, 10)
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Logf("woke after %v with %d events", r.at, r.n)
	if r.n == 0 || r.at > 10*time.Second {
		t.Errorf("the wait ended after %v with %d events; want a forced wakeup well before 20 s", r.at, r.n)
	}
}
