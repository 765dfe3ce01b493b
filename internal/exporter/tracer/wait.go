package tracer

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ringWaiter parks the reading goroutine in Go's network poller until the ring buffer's
// descriptor turns readable (the kernel forced a wakeup because the ring filled past WakeBytes)
// or a deadline passes. The ring reader's own wait is a blocking epoll_wait that pins a thread
// in a system call for the whole poll interval; the runtime then hands its processor off and
// its monitor thread spins up on every interval. Parked in the poller, an idle exporter leaves
// the runtime fully asleep between polls.
type ringWaiter struct {
	f  *os.File
	rc syscall.RawConn
}

// newRingWaiter registers a duplicate of the ring's descriptor with the runtime's poller. It
// fails where the descriptor cannot be polled that way; the caller then keeps the blocking wait.
func newRingWaiter(m *ebpf.Map) (*ringWaiter, error) {
	fd, err := unix.FcntlInt(uintptr(m.FD()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicating the ring buffer descriptor: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("making the ring buffer descriptor non-blocking: %w", err)
	}
	w := &ringWaiter{f: os.NewFile(uintptr(fd), "ringbuf")}
	// SetReadDeadline fails unless the runtime's poller accepted the descriptor.
	if err := w.f.SetReadDeadline(time.Time{}); err != nil {
		w.f.Close()
		return nil, fmt.Errorf("polling the ring buffer in the runtime: %w", err)
	}
	if w.rc, err = w.f.SyscallConn(); err != nil {
		w.f.Close()
		return nil, err
	}
	return w, nil
}

// wait returns when the ring signals readiness or at the deadline. The runtime forgets a
// readiness that arrived before the wait began, so callers check the ring's fill first; the
// kernel forces a wakeup on every submit while the ring stays past WakeBytes, so one missed
// between that check and the wait is followed by the next.
func (w *ringWaiter) wait(deadline time.Time) error {
	if err := w.f.SetReadDeadline(deadline); err != nil {
		return err
	}
	asked := false
	err := w.rc.Read(func(uintptr) bool {
		done := asked // the first call only asks the poller to wait; the next means it woke
		asked = true
		return done
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return err
}

func (w *ringWaiter) close() error { return w.f.Close() }
