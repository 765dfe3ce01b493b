package testnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// SockDiag is what the kernel's sock_diag reports about one TCP socket: an independent view
// to check the exporter's records against.
type SockDiag struct {
	State    uint8  // TCP state (1 = ESTABLISHED, 10 = LISTEN, ...)
	Inode    uint32 // socket inode
	CgroupID uint64 // the socket's cgroup v2 id (INET_DIAG_CGROUP_ID)
}

// Sizes and attributes of the inet_diag netlink protocol (linux/inet_diag.h).
const (
	inetDiagReqLen   = 56 // struct inet_diag_req_v2
	inetDiagMsgLen   = 72 // struct inet_diag_msg
	inetDiagCgroupID = 21 // INET_DIAG_CGROUP_ID
)

// ConnDiag asks the kernel, from inside ns, about the TCP socket of connection c.
func ConnDiag(ns *Netns, c net.Conn) (SockDiag, error) {
	return Diag(ns, addrPort(c.LocalAddr()), addrPort(c.RemoteAddr()))
}

// ListenerDiag asks the kernel, from inside ns, about a TCP listener.
func ListenerDiag(ns *Netns, ln net.Listener) (SockDiag, error) {
	local := addrPort(ln.Addr())
	var remote netip.AddrPort
	if local.Addr().Is4() {
		remote = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	} else {
		remote = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	}
	return Diag(ns, local, remote)
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// Diag looks up the TCP socket local→remote with sock_diag inside ns.
func Diag(ns *Netns, local, remote netip.AddrPort) (SockDiag, error) {
	if !local.IsValid() || !remote.IsValid() || local.Addr().Is4() != remote.Addr().Is4() {
		return SockDiag{}, fmt.Errorf("sock_diag %v → %v: want two addresses of one family", local, remote)
	}
	var d SockDiag
	err := ns.Do(func() error {
		var err error
		d, err = diag(local, remote)
		return err
	})
	return d, err
}

func diag(local, remote netip.AddrPort) (SockDiag, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return SockDiag{}, fmt.Errorf("sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, diagRequest(local, remote), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return SockDiag{}, fmt.Errorf("sock_diag request: %w", err)
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return SockDiag{}, fmt.Errorf("sock_diag reply: %w", err)
	}
	return parseDiagReply(buf[:n])
}

// diagRequest builds nlmsghdr + inet_diag_req_v2 for one socket (no dump).
func diagRequest(local, remote netip.AddrPort) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+inetDiagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST)
	r := b[unix.NLMSG_HDRLEN:]
	r[0] = unix.AF_INET6
	if local.Addr().Is4() {
		r[0] = unix.AF_INET
	}
	r[1] = unix.IPPROTO_TCP
	ne.PutUint32(r[4:], 0xffffffff) // every state
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:], local.Port())
	binary.BigEndian.PutUint16(id[2:], remote.Port())
	la, ra := local.Addr().AsSlice(), remote.Addr().AsSlice()
	copy(id[4:20], la)
	copy(id[20:36], ra)
	ne.PutUint32(id[40:], 0xffffffff) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], 0xffffffff)
	return b
}

func parseDiagReply(b []byte) (SockDiag, error) {
	ne := binary.NativeEndian
	if len(b) < unix.NLMSG_HDRLEN {
		return SockDiag{}, errors.New("sock_diag: short reply")
	}
	typ := ne.Uint16(b[4:])
	msg := b[unix.NLMSG_HDRLEN:min(len(b), int(ne.Uint32(b[0:])))]
	if typ == unix.NLMSG_ERROR {
		if len(msg) >= 4 {
			if code := int32(ne.Uint32(msg)); code != 0 {
				return SockDiag{}, fmt.Errorf("sock_diag: %w", unix.Errno(-code))
			}
		}
		return SockDiag{}, errors.New("sock_diag: error reply")
	}
	if typ != unix.SOCK_DIAG_BY_FAMILY || len(msg) < inetDiagMsgLen {
		return SockDiag{}, fmt.Errorf("sock_diag: unexpected reply type %d, %d bytes", typ, len(msg))
	}
	d := SockDiag{State: msg[1], Inode: ne.Uint32(msg[68:])}
	for attrs := msg[inetDiagMsgLen:]; len(attrs) >= 4; {
		l, t := int(ne.Uint16(attrs[0:])), ne.Uint16(attrs[2:])
		if l < 4 || l > len(attrs) {
			break
		}
		if t == inetDiagCgroupID && l >= 12 {
			d.CgroupID = ne.Uint64(attrs[4:])
		}
		attrs = attrs[min(len(attrs), (l+3)&^3):]
	}
	if d.CgroupID == 0 {
		return d, errors.New("sock_diag: the kernel reported no cgroup id")
	}
	return d, nil
}
