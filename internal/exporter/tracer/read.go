package tracer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// ErrClosed is returned by ReadEvents once the tracer is closed.
var ErrClosed = errors.New("tracer closed")

// ReadEvents appends the ring buffer's events to buf until the ring is empty and the deadline
// has passed, or max events were read. Producers submit without waking the reader (wakeups are
// expensive), so the caller polls: ReadEvents returns early only when the kernel forced a wakeup
// because the ring filled past Config.WakeBytes. Malformed records are counted in bad.
func (t *Tracer) ReadEvents(buf []Event, deadline time.Time, max int) (_ []Event, bad int, err error) {
	if t.reader == nil {
		return buf, 0, ErrClosed
	}
	t.reader.SetDeadline(deadline)
	var rec ringbuf.Record
	for len(buf) < max {
		if err := t.reader.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return buf, bad, nil
			}
			if errors.Is(err, ringbuf.ErrClosed) {
				return buf, bad, ErrClosed
			}
			return buf, bad, fmt.Errorf("reading the ring buffer: %w", err)
		}
		buf = append(buf, Event{})
		if decodeEventComm(rec.RawSample, &buf[len(buf)-1], &t.comms) != nil {
			buf = buf[:len(buf)-1]
			bad++
		}
	}
	return buf, bad, nil
}

// Snapshot runs the iter/tcp program in the calling thread's network namespace and appends an
// event per open or listening TCP socket. The iterator walks the namespace the reader is in
// when it opens the iterator: callers switch namespaces around this call.
func (t *Tracer) Snapshot(buf []Event) ([]Event, error) {
	if t.iter == nil {
		return buf, errors.New("iter/tcp is not available")
	}
	rd, err := t.iter.Open()
	if err != nil {
		return buf, fmt.Errorf("opening the socket iterator: %w", err)
	}
	defer rd.Close()
	return decodeStream(rd, buf)
}

// SnapshotAvailable reports whether the socket iterator was attached.
func (t *Tracer) SnapshotAvailable() bool { return t.iter != nil }

func decodeStream(r io.Reader, buf []Event) ([]Event, error) {
	chunk := make([]byte, eventSize*256)
	var pending []byte
	for {
		n, err := r.Read(chunk)
		pending = append(pending, chunk[:n]...)
		for len(pending) >= eventSize {
			buf = append(buf, Event{})
			_ = decodeEvent(pending[:eventSize], &buf[len(buf)-1])
			pending = pending[eventSize:]
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, fmt.Errorf("reading the socket iterator: %w", err)
		}
	}
}

func monotonicNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}
