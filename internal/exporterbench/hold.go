package exporterbench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The file descriptor limit (20,000 hard here, and no CAP_SYS_RESOURCE to raise it) keeps one
// process from holding 100,000 connections. The server side therefore never accepts: each
// connection waits, ESTABLISHED, in a listener's accept queue, which holds no descriptor. The
// client side is spread over holder processes (this binary again, see Hold) of at most
// holdPerProcess connections each.
const holdPerProcess = 16000

// queueListener opens a listener with an accept queue of backlog connections on addr inside
// the calling thread's namespace (somaxconn must allow it) and returns its descriptor and port.
func queueListener(addr netip.Addr, backlog int) (int, uint16, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, err
	}
	sa := &unix.SockaddrInet4{Addr: addr.As4()}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("binding: %w", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("listening: %w", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	return fd, uint16(got.(*unix.SockaddrInet4).Port), nil
}

// holder is a child process holding client connections.
type holder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startHolders starts enough holder processes to open n connections from the namespace at
// nsPath to targets (round robin), and waits until all are connected.
func startHolders(ctx context.Context, exe, nsPath string, targets []netip.AddrPort, n int) ([]*holder, error) {
	var hs []*holder
	for start := 0; start < n; start += holdPerProcess {
		count := min(holdPerProcess, n-start)
		to := targets[(start/holdPerProcess)%len(targets)]
		cmd := exec.CommandContext(ctx, exe, "bench", "hold", nsPath, to.String(), strconv.Itoa(count))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return hs, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return hs, err
		}
		if err := cmd.Start(); err != nil {
			return hs, fmt.Errorf("starting a holder: %w", err)
		}
		hs = append(hs, &holder{cmd: cmd, stdin: in})
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "ready\n" {
			return hs, fmt.Errorf("holder %d did not connect: %q %v", len(hs), line, err)
		}
	}
	return hs, nil
}

func stopHolders(hs []*holder) {
	for _, h := range hs {
		h.stdin.Close()
		_ = h.cmd.Wait()
	}
}

// Hold is the holder process: it enters the network namespace at nsPath, opens count
// connections to to, prints "ready" and keeps them until its standard input closes.
func Hold(nsPath, to string, count int) error {
	runtime.LockOSThread() // this thread (and the sockets it creates) lives in the namespace
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
	}
	fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("entering %s: %w", nsPath, err)
	}
	conns := make([]net.Conn, 0, count)
	for i := range count {
		c, err := net.DialTimeout("tcp", to, 10*time.Second)
		if err != nil {
			return fmt.Errorf("connection %d of %d: %w", i, count, err)
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return nil
}
