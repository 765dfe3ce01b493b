package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// A conntrack query is one ctnetlink IPCTNL_MSG_CT_GET request by original tuple, answered
// by the entry (whose reply tuple names the translated destination) and an ack, or by
// ENOENT. It is encoded and decoded here into reused buffers: a general netlink library
// allocates a few hundred bytes per attribute, which at tens of µs per query is most of the
// cost.

// Tuple is one direction of a tracked TCP connection.
type Tuple struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
}

// ctnetlink constants (linux/netfilter/nfnetlink.h, nfnetlink_conntrack.h).
const (
	nfnlSubsysCTNetlink = 1
	ipctnlMsgCTGet      = 1
	nlaNested           = 0x8000
	ctaTupleOrig        = 1
	ctaTupleReply       = 2
	ctaTupleIP          = 1
	ctaTupleProto       = 2
	ctaIPv4Src          = 1
	ctaIPv4Dst          = 2
	ctaIPv6Src          = 3
	ctaIPv6Dst          = 4
	ctaProtoNum         = 1
	ctaProtoSrcPort     = 2
	ctaProtoDstPort     = 3
)

// rawTable is a ctnetlink socket of one network namespace (a socket keeps the namespace it was
// created in, whatever thread uses it later).
type rawTable struct {
	fd  int
	seq uint32
	req []byte
	buf []byte
}

// Dial opens the conntrack netlink interface inside the network namespace at path ("" for
// the caller's own).
func Dial(path string) (Table, error) {
	var fd int
	err := inNamespace(path, func() (err error) {
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("conntrack netlink socket: %w", err)
	}
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("conntrack netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("conntrack netlink socket: %w", err)
	}
	return &rawTable{fd: fd, seq: uint32(time.Now().UnixNano()), req: make([]byte, 0, 128), buf: make([]byte, 16<<10)}, nil
}

// inNamespace runs fn on a thread switched into the network namespace at path ("" runs it
// where it is).
func inNamespace(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open(path)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering network namespace %s: %w", path, err)
	}
	err = fn()
	if rerr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); rerr != nil {
		// The thread stays locked: the runtime retires it rather than reuse it elsewhere.
		return errors.Join(err, fmt.Errorf("returning from network namespace %s: %w", path, rerr))
	}
	runtime.UnlockOSThread()
	return err
}

// Close closes the socket.
func (t *rawTable) Close() error { return unix.Close(t.fd) }

// Get returns the reply tuple of the connection whose original tuple is q; an error wrapping
// unix.ENOENT when conntrack has no such entry.
func (t *rawTable) Get(q Tuple) (Tuple, error) {
	t.seq++
	t.req = appendGet(t.req[:0], t.seq, q)
	if err := unix.Sendto(t.fd, t.req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return Tuple{}, fmt.Errorf("conntrack query: %w", err)
	}
	var reply Tuple
	found := false
	for {
		n, _, err := unix.Recvfrom(t.fd, t.buf, 0)
		if err != nil {
			return Tuple{}, fmt.Errorf("conntrack answer: %w", err)
		}
		done, ferr := t.parse(t.buf[:n], &reply, &found)
		if done {
			if ferr == nil && !found {
				ferr = fmt.Errorf("conntrack answer without an entry: %w", unix.ENOENT)
			}
			return reply, ferr
		}
	}
}

// parse reads one datagram of answers: done when the ack (or error) of the current request
// came; messages of earlier requests (a timed-out one) are skipped.
func (t *rawTable) parse(b []byte, reply *Tuple, found *bool) (done bool, err error) {
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		typ := binary.NativeEndian.Uint16(b[4:6])
		seq := binary.NativeEndian.Uint32(b[8:12])
		if l < unix.SizeofNlMsghdr || l > len(b) {
			return true, errors.New("conntrack answer: malformed netlink message")
		}
		msg := b[unix.SizeofNlMsghdr:l]
		b = b[min(nlaAlign(l), len(b)):]
		if seq != t.seq {
			continue
		}
		switch {
		case typ == unix.NLMSG_ERROR:
			if len(msg) < 4 {
				return true, errors.New("conntrack answer: short error message")
			}
			if code := int32(binary.NativeEndian.Uint32(msg[0:4])); code != 0 {
				return true, fmt.Errorf("conntrack query: %w", unix.Errno(-code))
			}
			return true, nil
		case typ == unix.NLMSG_DONE:
			return true, nil
		case typ>>8 == nfnlSubsysCTNetlink && len(msg) >= 4:
			if tp, ok := findTuple(msg[4:], ctaTupleReply); ok {
				*reply, *found = tp, true
			}
		}
	}
	return false, nil
}

func nlaAlign(n int) int { return (n + 3) &^ 3 }

// appendGet encodes an IPCTNL_MSG_CT_GET request for original tuple q.
func appendGet(b []byte, seq uint32, q Tuple) []byte {
	family, src, dst := byte(unix.AF_INET), ctaIPv4Src, ctaIPv4Dst
	if q.Src.Is6() {
		family, src, dst = unix.AF_INET6, ctaIPv6Src, ctaIPv6Dst
	}
	b = binary.NativeEndian.AppendUint32(b, 0) // length, set at the end
	b = binary.NativeEndian.AppendUint16(b, nfnlSubsysCTNetlink<<8|ipctnlMsgCTGet)
	b = binary.NativeEndian.AppendUint16(b, unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, family, unix.NFNETLINK_V0, 0, 0) // nfgenmsg
	orig := len(b)
	b = appendAttr(b, ctaTupleOrig|nlaNested, nil)
	ip := len(b)
	b = appendAttr(b, ctaTupleIP|nlaNested, nil)
	b = appendAttr(b, uint16(src), q.Src.AsSlice())
	b = appendAttr(b, uint16(dst), q.Dst.AsSlice())
	setLen(b, ip)
	proto := len(b)
	b = appendAttr(b, ctaTupleProto|nlaNested, nil)
	b = appendAttr(b, ctaProtoNum, []byte{unix.IPPROTO_TCP})
	b = appendAttr(b, ctaProtoSrcPort, binary.BigEndian.AppendUint16(nil, q.SrcPort))
	b = appendAttr(b, ctaProtoDstPort, binary.BigEndian.AppendUint16(nil, q.DstPort))
	setLen(b, proto)
	setLen(b, orig)
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	return b
}

// appendAttr appends an attribute (its payload padded); a nested one's length is set by
// setLen once its children follow.
func appendAttr(b []byte, typ uint16, payload []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func setLen(b []byte, at int) { binary.NativeEndian.PutUint16(b[at:], uint16(len(b)-at)) }

// attrs iterates the attributes of b: fn gets each one's type (flags cleared) and payload.
func attrs(b []byte, fn func(typ uint16, payload []byte) bool) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < 4 || l > len(b) {
			return
		}
		if !fn(binary.NativeEndian.Uint16(b[2:4])&^(nlaNested|0x4000), b[4:l]) {
			return
		}
		b = b[min(nlaAlign(l), len(b)):]
	}
}

// findTuple decodes the tuple attribute `which` of a conntrack entry.
func findTuple(b []byte, which uint16) (Tuple, bool) {
	var t Tuple
	ok := false
	attrs(b, func(typ uint16, p []byte) bool {
		if typ != which {
			return true
		}
		attrs(p, func(typ uint16, p []byte) bool {
			switch typ {
			case ctaTupleIP:
				attrs(p, func(typ uint16, p []byte) bool {
					a, aok := netip.AddrFromSlice(p)
					switch {
					case !aok:
					case typ == ctaIPv4Src || typ == ctaIPv6Src:
						t.Src = a
					case typ == ctaIPv4Dst || typ == ctaIPv6Dst:
						t.Dst = a
					}
					return true
				})
			case ctaTupleProto:
				attrs(p, func(typ uint16, p []byte) bool {
					if len(p) >= 2 {
						switch typ {
						case ctaProtoSrcPort:
							t.SrcPort = binary.BigEndian.Uint16(p)
						case ctaProtoDstPort:
							t.DstPort = binary.BigEndian.Uint16(p)
						}
					}
					return true
				})
			}
			return true
		})
		ok = t.Src.IsValid()
		return false
	})
	return t, ok
}
