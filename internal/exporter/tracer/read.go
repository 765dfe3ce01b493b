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
	if t.waiter != nil {
		if uint64(t.reader.AvailableBytes()) < t.cfg.WakeBytes {
			if err := t.waiter.wait(deadline); err != nil {
				return buf, 0, err
			}
		}
		deadline = time.Now() // the wait is over: read what is there without blocking
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

// OpenSnapshot starts the iter/tcp program over the calling thread's network namespace: the
// iterator walks the namespace the caller is in when it opens it, so callers switch namespaces
// around this call only. Read the result with ReadSnapshot, from any thread.
func (t *Tracer) OpenSnapshot() (io.ReadCloser, error) {
	if t.iter == nil {
		return nil, errors.New("iter/tcp is not available")
	}
	rd, err := t.iter.Open()
	if err != nil {
		return nil, fmt.Errorf("opening the socket iterator: %w", err)
	}
	return rd, nil
}

// SnapshotAvailable reports whether the socket iterator was attached.
func (t *Tracer) SnapshotAvailable() bool { return t.iter != nil }

// snapshotChunk is how many events ReadSnapshot hands over at a time.
const snapshotChunk = 512

// ReadSnapshot decodes an iterator's output and calls fn with chunks of at most 512 events (the
// slice is reused after fn returns), so a namespace with many sockets needs no large buffer.
func (t *Tracer) ReadSnapshot(r io.Reader, fn func([]Event)) error {
	raw := make([]byte, eventSize*snapshotChunk)
	evs := make([]Event, 0, snapshotChunk)
	have := 0
	for {
		n, err := r.Read(raw[have:])
		have += n
		whole := have / eventSize * eventSize
		for off := 0; off < whole; off += eventSize {
			evs = append(evs, Event{})
			_ = decodeEventComm(raw[off:off+eventSize], &evs[len(evs)-1], &t.comms)
		}
		if len(evs) > 0 {
			fn(evs)
			evs = evs[:0]
		}
		have = copy(raw, raw[whole:have])
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the socket iterator: %w", err)
		}
	}
}

func monotonicNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}
