package attribute

import (
	"net/netip"

	"github.com/flowscope/flowscope/internal/flow"
)

// translations keeps, out of the held records, what only translated client records carry:
// the backend their connection was translated to and the Service lookup of the address they
// dialled (heldState.nat names a record's entry; 0: none). Few records are translated, and
// the 26 bytes this takes out of every held record are bytes Add writes and Flush reads back
// when the record is long out of the cache. Entries are reused through a free list; the table
// keeps the storage of the most translated records held at once (at most MaxHeld), and gives
// it back when none is held at a trim.
type translations struct {
	idList[translation]
	used int

	// pairs keeps the addresses of the held records that are not both IPv4 (kept.local names
	// an entry): their local and remote address, packed. IPv4 records keep theirs inline.
	pairs     idList[[2]packedAddr]
	pairsUsed int
}

// holdPair returns an entry for a record's addresses, local and remote (kept.set).
func (ts *translations) holdPair(local, remote netip.Addr) uint32 {
	id := ts.pairs.newID()
	p := &ts.pairs.list[id]
	pack(&p[0], local)
	pack(&p[1], remote)
	ts.pairsUsed++
	return id
}

// dropPair gives the entry of a recycled record's addresses back, if it had one.
func (ts *translations) dropPair(r *kept) {
	if !r.inline() {
		ts.pairs.release(r.local)
		ts.pairsUsed--
	}
}

// translation is a translated record's backend (its address's form is kept.meta's nat4) and
// the lookup of the address it dialled (for a client).
type translation struct {
	addr packedAddr
	port uint16
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
	pack(&t.addr, addr)
	t.port = port
	ts.used++
	return id
}

// at is entry id.
func (ts *translations) at(id uint32) *translation { return &ts.list[id] }

// drop gives entry id back (a recycled record's; 0: none).
func (ts *translations) drop(id uint32) {
	if id != 0 {
		ts.release(id)
		ts.used--
	}
}

// trim gives the storage back when no entry is used and it is worth reclaiming.
func (ts *translations) trim() {
	if ts.used == 0 && cap(ts.list) >= 4096 {
		ts.list, ts.free = nil, nil
	}
	if ts.pairsUsed == 0 && cap(ts.pairs.list) >= 4096 {
		ts.pairs.list, ts.pairs.free = nil, nil
	}
}
