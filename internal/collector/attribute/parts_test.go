package attribute

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flowscope/flowscope/internal/flow"
)

// external returns n client records of cart to an external address (decided at once),
// connection ids from first on.
func external(first, n int) []Input {
	ins := make([]Input, n)
	for i := range ins {
		ins[i] = rec(flow.Client, cart, 1, 2)
		ins[i].Record.RemoteAddr = netip.MustParseAddr("1.1.1.1")
		ins[i].Record.LocalPort = uint16(10_000 + first + i)
		ins[i].Record.ConnID = uint64(first + i)
	}
	return ins
}

// checkWritten fails unless out holds the connections of ids [0, n) once each, in order.
func checkWritten(t *testing.T, out []flow.Conn, n int) {
	t.Helper()
	if len(out) != n {
		t.Fatalf("%d connections written, want %d", len(out), n)
	}
	for i, c := range out {
		if want := fmt.Sprintf("exp-n1/%d", i); c.ConnKey != want {
			t.Fatalf("connection %d is %s, want %s", i, c.ConnKey, want)
		}
	}
}

// A flush of more than writeChunk connections hands them to the sink in parts, in order.
func TestFlushWritesInParts(t *testing.T) {
	h := newHarness(t, Config{})
	h.heartbeat(cart, cartIP, 0, 1000)
	n := 2*writeChunk + 300
	var sizes []int
	h.a.sink = SinkFunc(func(_ context.Context, conns []flow.Conn) error {
		sizes = append(sizes, len(conns))
		h.out = append(h.out, conns...)
		return nil
	})
	h.add(external(0, n)...)
	h.advance(40)
	checkWritten(t, h.out, n)
	if len(sizes) != 3 {
		t.Errorf("written in parts of %v, want 3 parts", sizes)
	}
}

// A part the sink refuses waits, with the rest of its flush, for the next flush.
func TestFlushPartFailure(t *testing.T) {
	h := newHarness(t, Config{})
	h.heartbeat(cart, cartIP, 0, 1000)
	n := 2*writeChunk + 300
	calls := 0
	h.a.sink = SinkFunc(func(_ context.Context, conns []flow.Conn) error {
		if calls++; calls == 2 {
			return errors.New("store down")
		}
		h.out = append(h.out, conns...)
		return nil
	})
	h.add(external(0, n)...)
	h.now = at(40)
	if err := h.a.Flush(t.Context()); err == nil {
		t.Error("a failed part was not reported")
	}
	if len(h.out) != writeChunk || h.a.Held() != 0 {
		t.Fatalf("after the failed part: %d written, %d held", len(h.out), h.a.Held())
	}
	h.advance(41)
	checkWritten(t, h.out, n)
	if calls != 3 {
		t.Errorf("%d writes, want 3", calls)
	}
}

// Records added while a part is written (the lock is let go) are held, decided and written
// once; what the full policy writes meanwhile is kept, and it forces the records due soonest.
func TestAddWhileAPartIsWritten(t *testing.T) {
	n := 2*writeChunk + 300
	h := newHarness(t, Config{MaxHeld: n})
	h.heartbeat(cart, cartIP, 0, 1000)
	calls, more := 0, writeChunk+5 // with the first part out, the window overflows by 5
	h.a.sink = SinkFunc(func(_ context.Context, conns []flow.Conn) error {
		if calls++; calls == 1 {
			if err := h.a.Add(external(n, more)...); err != nil {
				t.Error(err)
			}
		}
		h.out = append(h.out, conns...)
		return nil
	})
	h.add(external(0, n)...)
	h.advance(40)
	h.advance(41)
	if got := testutil.ToFloat64(h.a.m.full); got != 5 {
		t.Errorf("holding_full_total = %v, want 5", got)
	}
	seen := map[string]int{}
	for _, c := range h.out {
		seen[c.ConnKey]++
	}
	for i := range n + more {
		if k := fmt.Sprintf("exp-n1/%d", i); seen[k] != 1 {
			t.Errorf("%s written %d times", k, seen[k])
		}
	}
	if len(h.out) != n+more || h.a.Held() != 0 {
		t.Errorf("%d written, want %d; %d held", len(h.out), n+more, h.a.Held())
	}
	// The full policy forced the records due soonest, the rest of the part's slot, not the
	// records the Add took: the flush's own come first, in order.
	checkWritten(t, h.out[:min(n, len(h.out))], n)
}

// Add runs in another goroutine while flushes write parts (run with -race).
func TestConcurrentAddAndPartWrites(t *testing.T) {
	h := newHarness(t, Config{})
	h.heartbeat(cart, cartIP, 0, 1000)
	n := 3 * writeChunk
	h.add(external(0, n)...)
	h.now = at(40)
	done := make(chan error)
	go func() {
		var err error
		for i := n; i < 2*n && err == nil; i += 100 {
			err = h.a.Add(external(i, min(100, 2*n-i))...)
		}
		done <- err
	}()
	for flushing := true; flushing; {
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
			flushing = false
		default:
		}
		if err := h.a.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	h.advance(41)
	seen := map[string]int{}
	for _, c := range h.out {
		seen[c.ConnKey]++
	}
	if len(seen) != 2*n || len(h.out) != 2*n || h.a.Held() != 0 {
		t.Errorf("%d connections written (%d distinct), want %d; %d held", len(h.out), len(seen), 2*n, h.a.Held())
	}
}
