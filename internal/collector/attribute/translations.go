package attribute

import (
	"net/netip"

	"github.com/flowscope/flowscope/internal/flow"
)

// translations keeps, out of the held records, what few records carry: translated client
// records' backend and the Service lookup of the address they dialled (kept.nat names a
// record's entry; 0: none), addresses that are not both IPv4 (addrs) and counters that do not
// fit 32 bits, or resets that do not fit 16 (counts). The bytes this takes out of every held
// record are bytes Add writes and Flush reads back when the record is long out of the cache.
// Entries are reused through free lists; each table keeps the storage of the most records held
// at once that needed it (at most MaxHeld), and gives it back when none is held at a trim.
type translations struct {
	idList[translation]

	addrs  idList[[2]addrKey]  // a record's local and remote address (kept.local names the entry)
	counts idList[bigCounters] // a record's counters (kept.sent, with bigCounts)
}

// bigCounters are a record's counters out of line.
type bigCounters struct {
	sent, received, retrans, bytesRetrans uint64 // bytes sent and received, retransmitted segments and bytes
	resetsSent, rsts                      uint32
}

// holdAddrs returns an entry for r's addresses; holdCounts one for its counters (kept.set).
func (ts *translations) holdAddrs(r *flow.Record) uint32 {
	id := ts.addrs.newID()
	ts.addrs.list[id] = [2]addrKey{keyFor(r.LocalAddr), keyFor(r.RemoteAddr)}
	return id
}

func (ts *translations) holdCounts(r *flow.Record) uint32 {
	id := ts.counts.newID()
	ts.counts.list[id] = bigCounters{r.BytesSent, r.BytesReceived, r.Retransmits, r.BytesRetransmitted, r.ResetsSent, r.ResetsReceived}
	return id
}

// dropRecord gives back what a finished record kept out of line: its translation (nat), its
// addresses and its counters.
func (ts *translations) dropRecord(r *kept) {
	ts.drop(r.nat)
	if !r.addrsInline() {
		ts.addrs.release(r.local)
	}
	if r.meta&bigCounts != 0 {
		ts.counts.release(r.sent)
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

// take returns the id of a new entry for backend addr:port (kept.nat names it).
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

// trim gives each table's storage back when none of its entries is used and it is worth
// reclaiming.
func (ts *translations) trim() {
	ts.idList.letGoUnused()
	ts.addrs.letGoUnused()
	ts.counts.letGoUnused()
}
