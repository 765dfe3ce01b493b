package ownership

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"unsafe"
)

// entry holds the ranges of one key, ascending by from (rs). floor: lookups before it answer
// gap (older ranges were evicted). The ranges start in the entry's own storage (in): most
// addresses hold a few ranges, which then share the entry's cache lines; beyond, append moves
// them to the heap (and compaction back, see fit). An entry is never copied: p may point into
// it. The ranges are held as pointer and 32-bit length and capacity, not a slice, so that the
// first line holds them and the first two ranges (an address's exporter and Kubernetes
// ranges): a claim or lookup of such an address reads one line, not two. The floor, rarely
// set, is in the second line, and c's top bit says whether it is set (else it is 0).
type entry struct {
	p     *rng   // the ranges' storage
	n, c  uint32 // their number and the storage's capacity (and floorSet)
	in    [inlineRanges]rng
	floor int64
	_     [8]byte
}

const floorSet = 1 << 31

// The entry is two cache lines, its first two ranges in the first.
var (
	_ [128 - unsafe.Sizeof(entry{})]byte
	_ [unsafe.Sizeof(entry{}) - 128]byte
	_ [64 - unsafe.Offsetof(entry{}.in) - 2*unsafe.Sizeof(rng{})]byte
)

// rs returns e's ranges.
func (e *entry) rs() []rng { return unsafe.Slice(e.p, e.c&^floorSet)[:e.n] }

// leadOwners returns the distinct owners of e's first two ranges (0 for a range it lacks, and
// b is 0 when it is a: an address's exporter and Kubernetes ranges mostly share one owner),
// read without building the ranges' slice (the warming pipelines' last links ask only this).
func (e *entry) leadOwners() (a, b ownerID) {
	if e.n > 0 {
		a = e.p.owner
	}
	if e.n > 1 {
		b = (*rng)(unsafe.Add(unsafe.Pointer(e.p), unsafe.Sizeof(rng{}))).owner
	}
	if b == a {
		b = 0
	}
	return a, b
}

// set makes r e's ranges.
func (e *entry) set(r []rng) {
	e.p, e.n, e.c = unsafe.SliceData(r), uint32(len(r)), uint32(cap(r))|e.c&floorSet
}

// floorAt returns e's floor without reading the second line when it was never set.
func (e *entry) floorAt() int64 {
	if e.c&floorSet == 0 {
		return 0
	}
	return e.floor
}

func (e *entry) setFloor(t int64) { e.floor, e.c = t, e.c|floorSet }

// inlineRanges is the number of ranges an entry holds in its own storage: an address's
// current pod's exporter and Kubernetes ranges and its previous pod's, which the horizon
// keeps. An entry is then 128 bytes, two cache lines. (Measured, BenchmarkLookup at 100,000
// pods with four ranges an address: 120 ns with four inline, 200 with two.)
const inlineRanges = 4

func newEntry() *entry {
	e := &entry{}
	e.set(e.in[:0])
	return e
}

// reset empties e, its ranges back in its own storage.
func (e *entry) reset() {
	*e = entry{}
	e.set(e.in[:0])
}

// fit moves e's ranges back into its own storage when they fit there again.
func (e *entry) fit() {
	if n := int(e.n); n <= inlineRanges && e.p != &e.in[0] {
		copy(e.in[:], e.rs())
		clear(e.in[n:])
		e.set(e.in[:n])
	}
}

// addrMap maps addresses to their entries. IPv4 addresses (nearly all of a cluster's) go
// through an index with address locality: an open-addressed table from the address's /28 to
// the 16 entry numbers of its addresses, held in the table itself (pods take their addresses
// from their node's podCIDR, so a node's pods share a few blocks), and the entries themselves
// live in stable chunks, their first ranges inline. Finding an address's entry reads the
// table's prefixes (4 bytes a slot: they stay in the cache), the slot's 64-byte line of entry
// numbers, and the entry: no pointer to a block in between. Other addresses map by their 16
// bytes.
type addrMap struct {
	blocks blockTable          // address>>blockBits → its entry numbers
	chunks []*[chunkSize]entry // IPv4 entries, by number
	free   []uint32            // entry numbers to reuse
	n4     int                 // IPv4 entries in use
	v6     map[ipKey]*entry
}

const (
	blockBits = 4
	chunkBits = 10
	chunkSize = 1 << chunkBits
	// hugeMinChunks: from this many chunks (16,384 addresses, as warming) the entries are
	// advised into huge pages (adviseHuge); a small store keeps the heap's pages.
	hugeMinChunks = 16
)

// blockIdx holds the entry numbers (plus one; 0: none) of the addresses of one /28: one
// cache line (the table's slices are 64-byte aligned: their sizes are powers of two of 4 KB
// and more, which the Go allocator aligns). A lone address (a Service's ClusterIP) costs two
// slots of 68 bytes at most, as a block and its table slot cost 112 before.
type blockIdx [1 << blockBits]uint32

// blockTable maps prefixes to their blocks: open addressing, linear probing, at most half
// full — one probe, mostly. pfx and idx are parallel: a probe reads pfx (small, in the cache)
// and then the one line of idx it found, which depends on no other load.
type blockTable struct {
	pfx   []uint32   // prefix plus one; 0: an empty slot. len a power of two (or 0)
	idx   []blockIdx // the slots' blocks
	shift uint8      // 32 - log2(len(pfx))
	n     int
	moves uint64 // growths and removals: they move blocks to other slots (claim warming checks it)
}

func (t *blockTable) home(prefix uint32) int {
	return int((prefix * 0x9e3779b1) >> t.shift)
}

// slot returns prefix's slot, or -1.
func (t *blockTable) slot(prefix uint32) int {
	if len(t.pfx) == 0 {
		return -1
	}
	mask := len(t.pfx) - 1
	for i := t.home(prefix); ; i = (i + 1) & mask {
		switch t.pfx[i] {
		case prefix + 1:
			return i
		case 0:
			return -1
		}
	}
}

// add makes an empty block for prefix (which has none) and returns its slot.
func (t *blockTable) add(prefix uint32) int {
	if 2*(t.n+1) > len(t.pfx) {
		oldP, oldI := t.pfx, t.idx
		n := max(64, 2*len(oldP))
		t.pfx, t.idx, t.n = make([]uint32, n), make([]blockIdx, n), 0
		t.shift = uint8(32 - bits.Len(uint(n-1)))
		t.moves++
		for j, p := range oldP {
			if p != 0 {
				t.idx[t.add(p-1)] = oldI[j]
			}
		}
	}
	mask := len(t.pfx) - 1
	i := t.home(prefix)
	for t.pfx[i] != 0 {
		i = (i + 1) & mask
	}
	t.pfx[i], t.idx[i] = prefix+1, blockIdx{}
	t.n++
	return i
}

// remove deletes prefix's block, moving later slots of its probe run back (no tombstones).
func (t *blockTable) remove(prefix uint32) {
	i := t.slot(prefix)
	if i < 0 {
		return
	}
	mask := len(t.pfx) - 1
	t.pfx[i], t.idx[i] = 0, blockIdx{}
	t.n--
	t.moves++
	for j := (i + 1) & mask; t.pfx[j] != 0; j = (j + 1) & mask {
		h := t.home(t.pfx[j] - 1)
		if (j-h)&mask >= (j-i)&mask { // h is not cyclically in (i, j]: the slot may move to i
			t.pfx[i], t.idx[i] = t.pfx[j], t.idx[j]
			t.pfx[j], t.idx[j] = 0, blockIdx{}
			i = j
		}
	}
}

func newAddrMap() addrMap {
	return addrMap{v6: map[ipKey]*entry{}}
}

var v4InV6 = [12]byte{10: 0xff, 11: 0xff}

// v4 returns the IPv4 address in k (an IPv4-mapped IPv6 key, as keyOf makes).
func (k *ipKey) v4() (uint32, bool) {
	if [12]byte(k[:12]) != v4InV6 {
		return 0, false
	}
	return binary.BigEndian.Uint32(k[12:]), true
}

func (m *addrMap) entry(i uint32) *entry { return &m.chunks[i>>chunkBits][i&(chunkSize-1)] }

// get returns k's entry, or nil.
func (m *addrMap) get(k ipKey) *entry {
	a, ok := k.v4()
	if !ok {
		return m.v6[k]
	}
	return m.get4(a)
}

// getAddr returns addr's entry, or nil.
func (m *addrMap) getAddr(addr netip.Addr) *entry {
	if addr.Is4() {
		return m.get4(v4(addr))
	}
	return m.get(keyOf(addr))
}

// v4 is an IPv4 address as the index keys it (big endian: a /28 is its top 28 bits).
func v4(addr netip.Addr) uint32 {
	b := addr.As4()
	return binary.BigEndian.Uint32(b[:])
}

// get4 returns the entry of IPv4 address a, or nil.
func (m *addrMap) get4(a uint32) *entry {
	if sl := m.slotOf(a); sl != nil && *sl != 0 {
		return m.entry(*sl - 1)
	}
	return nil
}

// create returns k's entry, making an empty one when there is none.
func (m *addrMap) create(k ipKey) *entry {
	a, ok := k.v4()
	if !ok {
		e := m.v6[k]
		if e == nil {
			e = newEntry()
			m.v6[k] = e
		}
		return e
	}
	j := m.blocks.slot(a >> blockBits)
	if j < 0 {
		j = m.blocks.add(a >> blockBits)
	}
	slot := &m.blocks.idx[j][a&(1<<blockBits-1)]
	if *slot != 0 {
		return m.entry(*slot - 1)
	}
	var i uint32
	if n := len(m.free); n > 0 {
		i, m.free = m.free[n-1], m.free[:n-1]
	} else {
		i = uint32(len(m.chunks)) << chunkBits
		m.chunks = append(m.chunks, new([chunkSize]entry))
		switch n := len(m.chunks); {
		case n == hugeMinChunks: // the store became large: its entries in huge pages from now on
			for _, c := range m.chunks {
				adviseHuge(unsafe.Pointer(c), unsafe.Sizeof(*c))
			}
		case n > hugeMinChunks:
			adviseHuge(unsafe.Pointer(m.chunks[n-1]), unsafe.Sizeof(*m.chunks[n-1]))
		}
		for j := chunkSize - 1; j > 0; j-- { // the chunk's other entries, lowest first out
			m.free = append(m.free, i+uint32(j))
		}
	}
	*slot = i + 1
	m.n4++
	e := m.entry(i)
	e.reset()
	return e
}

// sweep calls drop for every entry and removes those for which it returns true.
func (m *addrMap) sweep(drop func(*entry) bool) {
	t := &m.blocks
	var empty []uint32
	for j, p := range t.pfx { // (blocks are removed afterwards: a removal moves others)
		if p == 0 {
			continue
		}
		left := false
		for k, i := range t.idx[j] {
			if i == 0 {
				continue
			}
			if !drop(m.entry(i - 1)) {
				left = true
				continue
			}
			m.entry(i - 1).reset()
			m.free = append(m.free, i-1)
			t.idx[j][k] = 0
			m.n4--
		}
		if !left {
			empty = append(empty, p-1)
		}
	}
	for _, p := range empty {
		t.remove(p)
	}
	for k, e := range m.v6 {
		if drop(e) {
			delete(m.v6, k)
		}
	}
}

func (m *addrMap) len() int { return m.n4 + len(m.v6) }
