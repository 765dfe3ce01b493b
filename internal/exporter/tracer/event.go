package tracer

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Kind is the kind of a kernel event.
type Kind uint8

// Event kinds, as in bpf/flow.c.
const (
	KindClose     Kind = 1 // a socket entered TCP_CLOSE: final counters
	KindOpen      Kind = 2 // fallback hooks only: a socket started opening
	KindResetSent Kind = 3 // the socket sent a RST
	KindSnapshot  Kind = 4 // iter/tcp: counters of an open socket
	KindListen    Kind = 5 // iter/tcp: a listening socket
)

// Event flags, as in bpf/flow.c.
const (
	FlagActive     uint16 = 1  // active open (connect)
	FlagPassive    uint16 = 2  // passive open (accept)
	FlagStartKnown uint16 = 4  // StartNs is the observed open
	FlagFinRcvd    uint16 = 8  // the peer's FIN was received in order
	FlagFinAcked   uint16 = 16 // all sent sequence space is acknowledged (counts as "our FIN acked" when a FIN was sent)
	FlagProc       uint16 = 32 // Pid and Comm were captured in process context
)

// TCP states, as in the kernel.
const (
	StateEstablished uint8 = 1 + iota
	StateSynSent
	StateSynRecv
	StateFinWait1
	StateFinWait2
	StateTimeWait
	StateClose
	StateCloseWait
	StateLastAck
	StateListen
	StateClosing
	StateNewSynRecv
)

var stateNames = [...]string{"", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
	"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV"}

// StateName returns the kernel's name of a TCP state.
func StateName(s uint8) string {
	if int(s) < len(stateNames) && s != 0 {
		return stateNames[s]
	}
	return "UNKNOWN"
}

// Event is one decoded kernel event (struct flow_event in bpf/flow.c). Times are kernel
// CLOCK_MONOTONIC nanoseconds; StartNs is 0 when unknown.
type Event struct {
	Key            uint64 // socket cookie (tp_btf, iter) or socket address (fallback hooks)
	SkAddr         uint64
	StartNs        uint64
	EndNs          uint64
	CgroupID       uint64
	BytesAcked     uint64
	BytesReceived  uint64
	BytesRetrans   uint64
	Netns          uint32
	SegsOut        uint32
	SegsIn         uint32
	TotalRetrans   uint32
	SrttUs         uint32
	MinRttUs       uint32
	Pid            uint32
	Sport          uint16
	Dport          uint16
	Family         uint16 // AF_INET (2) or AF_INET6 (10)
	Flags          uint16
	SkErr          uint16
	Kind           Kind
	State          uint8 // the state left for CLOSE, or the current state
	ResetsReceived uint8
	Saddr          [16]byte
	Daddr          [16]byte
	Comm           string
	Inode          uint64 // iter/tcp listeners: the socket's inode
}

// eventSize is sizeof(struct flow_event).
const eventSize = 168

var errShortEvent = errors.New("short kernel event")

// comms interns command names: a few processes open most sockets, and a string per record
// would be garbage.
type comms struct {
	last [16]byte
	s    string
}

func (c *comms) get(b []byte) string {
	if [16]byte(b) == c.last {
		return c.s
	}
	c.last = [16]byte(b)
	c.s = cString(b)
	return c.s
}

// decodeEvent decodes one struct flow_event with explicit little-endian loads (binary.Read
// costs ten times more per record).
func decodeEvent(b []byte, e *Event) error {
	return decodeEventComm(b, e, nil)
}

func decodeEventComm(b []byte, e *Event, c *comms) error {
	if len(b) < eventSize {
		return errShortEvent
	}
	le := binary.LittleEndian
	e.Key = le.Uint64(b[0:])
	e.SkAddr = le.Uint64(b[8:])
	e.StartNs = le.Uint64(b[16:])
	e.EndNs = le.Uint64(b[24:])
	e.CgroupID = le.Uint64(b[32:])
	e.BytesAcked = le.Uint64(b[40:])
	e.BytesReceived = le.Uint64(b[48:])
	e.BytesRetrans = le.Uint64(b[56:])
	e.Netns = le.Uint32(b[64:])
	e.SegsOut = le.Uint32(b[68:])
	e.SegsIn = le.Uint32(b[72:])
	e.TotalRetrans = le.Uint32(b[76:])
	e.SrttUs = le.Uint32(b[80:])
	e.MinRttUs = le.Uint32(b[84:])
	e.Pid = le.Uint32(b[88:])
	e.Sport = le.Uint16(b[92:])
	e.Dport = le.Uint16(b[94:])
	e.Family = le.Uint16(b[96:])
	e.Flags = le.Uint16(b[98:])
	e.SkErr = le.Uint16(b[100:])
	e.Kind = Kind(b[102])
	e.State = b[103]
	e.ResetsReceived = b[104]
	copy(e.Saddr[:], b[108:124])
	copy(e.Daddr[:], b[124:140])
	if c != nil {
		e.Comm = c.get(b[140:156])
	} else {
		e.Comm = cString(b[140:156])
	}
	e.Inode = le.Uint64(b[160:])
	return nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// Addrs returns the local and remote addresses; IPv4-mapped IPv6 addresses are unmapped.
func (e *Event) Addrs() (local, remote netip.Addr) {
	if e.Family == 2 {
		local = netip.AddrFrom4([4]byte(e.Saddr[:4]))
		remote = netip.AddrFrom4([4]byte(e.Daddr[:4]))
		return local, remote
	}
	return netip.AddrFrom16(e.Saddr).Unmap(), netip.AddrFrom16(e.Daddr).Unmap()
}
