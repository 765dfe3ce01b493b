package attribute

import (
	"net/netip"

	"github.com/flowscope/flowscope/internal/flow"
)

// translations keeps, out of the held records, what few records carry: translated client
// records' backend and the Service lookup of the address they dialled (heldState.nat names a
// record's entry; 0: none), and wide records' addresses and counters (wides).
// The bytes this takes out of every held record are bytes Add writes and Flush reads back when
// the record is long out of the cache. Entries are reused through free lists; each table keeps
// the storage of the most records held at once that needed it (at most MaxHeld), and gives it
// back when none is held at a trim.
type translations struct {
	idList[translation]

	// wides keeps what wide held records (kept.meta's wide bit; kept.local names the entry)
	// keep out of line: nearly every record's addresses are both IPv4 and its counters fit 32
	// bits, and those keep theirs inline.
	wides idList[wideFields]
}

// wideFields are a wide record's addresses, local and remote, and its counters.
type wideFields struct {
	addrs                 [2]addrKey
	sent, received        uint64
	retrans, bytesRetrans uint64
}

// holdWide returns an entry for r's wide fields (kept.set).
func (ts *translations) holdWide(r *flow.Record) uint32 {
	id := ts.wides.newID()
	w := &ts.wides.list[id]
	w.addrs = [2]addrKey{keyFor(r.LocalAddr), keyFor(r.RemoteAddr)}
	w.sent, w.received, w.retrans, w.bytesRetrans = r.BytesSent, r.BytesReceived, r.Retransmits, r.BytesRetransmitted
	return id
}

// dropWide gives a recycled record's entry back, if it had one.
func (ts *translations) dropWide(r *kept) {
	if !r.inline() {
		ts.wides.release(r.local)
	}
}

// translation is a translated record's backend (and whether it is an IPv4 address) and the
// lookup of the address it dialled (for a client).
type translation struct {
	addr addrKey
	port uint16
	is4  bool
	vip  answer // for a translated client: the address it dialled
}

// hold returns an entry for r's translation if it carries one (heldState.nat), else 0.
func (ts *translations) hold(r *flow.Record) uint32 {
	if r.NatRemoteAddr.IsValid() {
		return ts.take(r.NatRemoteAddr, r.NatRemotePort)
	}
	return 0
}

// take returns the id of a new entry for backend addr:port.
func (ts *translations) take(addr netip.Addr, port uint16) uint32 {
	id := ts.newID()
	t := &ts.list[id]
	t.addr, t.is4, t.port = keyFor(addr), addr.Is4(), port
	return id
}

// at is entry id.
func (ts *translations) at(id uint32) *translation { return &ts.list[id] }

// drop gives entry id back (a recycled record's; 0: none).
func (ts *translations) drop(id uint32) {
	if id != 0 {
		ts.release(id)
	}
}

// trim gives the storage back when no entry is used and it is worth reclaiming.
func (ts *translations) trim() {
	if ts.inUse() == 0 && cap(ts.list) >= 4096 {
		ts.list, ts.free = nil, nil
	}
	if ts.wides.inUse() == 0 && cap(ts.wides.list) >= 4096 {
		ts.wides.list, ts.wides.free = nil, nil
	}
}
