package testnet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// chunk is the pattern WriteN sends.
var chunk = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// WriteN writes exactly n bytes to w.
func WriteN(w io.Writer, n int64) error {
	for n > 0 {
		b := chunk
		if int64(len(b)) > n {
			b = b[:n]
		}
		m, err := w.Write(b)
		n -= int64(m)
		if err != nil {
			return fmt.Errorf("writing (%d bytes left): %w", n, err)
		}
	}
	return nil
}

// ReadN reads exactly n bytes from r.
func ReadN(r io.Reader, n int64) error {
	got, err := io.CopyN(io.Discard, r, n)
	if err != nil {
		return fmt.Errorf("reading %d bytes: got %d: %w", n, got, err)
	}
	return nil
}

// ReadToEOF reads r until end of file and returns how many bytes it read.
func ReadToEOF(r io.Reader) (int64, error) {
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return n, fmt.Errorf("reading to EOF after %d bytes: %w", n, err)
	}
	return n, nil
}

// CloseWrite half-closes c (sends FIN) while reads go on.
func CloseWrite(c net.Conn) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("CloseWrite: %T is not a TCP connection", c)
	}
	return tc.CloseWrite()
}

// CloseAbort closes c with SO_LINGER 0, so the kernel sends a reset instead of a FIN.
func CloseAbort(c net.Conn) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("CloseAbort: %T is not a TCP connection", c)
	}
	return errors.Join(tc.SetLinger(0), tc.Close())
}

// TCPInfo returns the kernel's TCP_INFO for c (retransmits in Total_retrans, srtt in Rtt, µs).
func TCPInfo(c syscall.Conn) (*unix.TCPInfo, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("TCP_INFO: %w", err)
	}
	var info *unix.TCPInfo
	var serr error
	err = raw.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	if err = errors.Join(err, serr); err != nil {
		return nil, fmt.Errorf("TCP_INFO: %w", err)
	}
	return info, nil
}
