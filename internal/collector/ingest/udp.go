package ingest

import (
	"context"
	"errors"
	"net"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/flowscope/flowscope/internal/flowbatch"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
)

// udpQueue bounds the datagrams read but not yet stored; when full, datagrams are dropped and
// counted (as loss they also show up as missing sequence numbers).
const udpQueue = 4096

// udpSocketBuffer absorbs bursts while the worker stores earlier datagrams.
const udpSocketBuffer = 8 << 20

func (in *Ingest) startUDP(ctx context.Context, g *errgroup.Group, _ net.Listener, pc net.PacketConn) (string, func(), error) {
	if uc, ok := pc.(*net.UDPConn); ok {
		growReadBuffer(uc, udpSocketBuffer)
	}
	q := make(chan []byte, udpQueue)
	g.Go(func() error {
		defer close(q)
		buf := make([]byte, in.cfg.MaxUDPBytes+1)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return nil
				}
				return err
			}
			if n > in.cfg.MaxUDPBytes {
				in.rejected(TransportUDP, Key{}, &flowbatch.RejectError{Reason: flowv1.RejectReason_REJECT_REASON_TOO_LARGE, Msg: "datagram too large"})
				continue
			}
			select {
			case q <- append([]byte(nil), buf[:n]...):
			default:
				in.rejected(TransportUDP, Key{}, &flowbatch.RejectError{Reason: flowv1.RejectReason_REJECT_REASON_UNAVAILABLE, Msg: "ingest queue full"})
			}
		}
	})
	g.Go(func() error {
		for d := range q {
			batch := [][]byte{d}
		more:
			for len(batch) < 256 {
				select {
				case d, ok := <-q:
					if !ok {
						break more
					}
					batch = append(batch, d)
				default:
					break more
				}
			}
			in.AcceptMany(TransportUDP, batch)
		}
		return nil
	})
	return pc.LocalAddr().String(), func() { pc.Close() }, nil
}

// growReadBuffer asks for a receive buffer of n bytes: beyond net.core.rmem_max when the
// process may (CAP_NET_ADMIN), else as much as the kernel allows. Best effort.
func growReadBuffer(uc *net.UDPConn, n int) {
	if rc, err := uc.SyscallConn(); err == nil {
		var serr error
		_ = rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
		})
		if serr == nil {
			return
		}
	}
	_ = uc.SetReadBuffer(n)
}
