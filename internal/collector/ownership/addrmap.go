package ownership

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"unsafe"
)

// entry holds the ranges of one key, ascending by from. floor: lookups before it answer gap
// (older ranges were evicted). r starts in the entry's own storage (in): most addresses hold
// a few ranges, which then share the entry's cache lines; beyond, append moves them to the
// heap (and compaction back, see fit). An entry is never copied: r may point into it.
type entry struct {
	r     []rng
	floor int64
	in    [inlineRanges]rng
}

// inlineRanges is the number of ranges an entry holds in its own storage: an address's
// current pod's exporter and Kubernetes ranges and its previous pod's, which the horizon
// keeps. An entry is then 128 bytes, two cache lines. (Measured, BenchmarkLookup at 100,000
// pods with four ranges an address: 120 ns with four inline, 200 with two.)
const inlineRanges = 4

func newEntry() *entry {
	e := &entry{}
	e.r = e.in[:0]
	return e
}

// reset empties e, its ranges back in its own storage.
func (e *entry) reset() {
	*e = entry{}
	e.r = e.in[:0]
}

// fit moves e's ranges back into its own storage when they fit there again.
func (e *entry) fit() {
	if n := len(e.r); n <= inlineRanges && (cap(e.r) == 0 || &e.r[:1][0] != &e.in[0]) {
		copy(e.in[:], e.r)
		clear(e.in[n:])
		e.r = e.in[:n]
	}
}

// addrMap maps addresses to their entries. IPv4 addresses (nearly all of a cluster's) go
// through a two-level index with address locality: a table from the address's /28 to a block
// of 16 entry numbers (pods take their addresses from their node's podCIDR, so a node's pods
// share a few blocks, and 100,000 pods need ≈ 450 KB of blocks: the index stays in the
// cache), and the entries themselves live in stable chunks, their first ranges inline. A
// claim or a lookup so costs one cache miss (the entry and its ranges, adjacent) where a Go
// map of entry pointers cost three (the map's group, the entry, its ranges). Other
// addresses map by their 16 bytes.
type addrMap struct {
	blocks blockTable          // address>>blockBits → its block
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

// addrBlock holds the entry numbers (plus one; 0: none) of the addresses of one /28: 72
// bytes, so that a lone address (a Service's ClusterIP) does not cost much more than its
// entry. (Blocks of /26 measured the same; sparse addresses cost 264 bytes a block.)
type addrBlock struct {
	idx    [1 << blockBits]uint32
	n      int32
	prefix uint32
}

// blockTable maps prefixes to their blocks: open addressing, linear probing, at most half
// full — one probe, mostly, where a Go map takes a hash call and a group scan.
type blockTable struct {
	slots []blockSlot // len a power of two (or 0)
	shift uint8       // 32 - log2(len(slots))
	n     int
}

type blockSlot struct {
	prefix uint32 // plus one: 0 is an empty slot
	b      *addrBlock
}

func (t *blockTable) home(prefix uint32) int {
	return int((prefix * 0x9e3779b1) >> t.shift)
}

func (t *blockTable) get(prefix uint32) *addrBlock {
	if len(t.slots) == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	for i := t.home(prefix); ; i = (i + 1) & mask {
		switch sl := &t.slots[i]; sl.prefix {
		case prefix + 1:
			return sl.b
		case 0:
			return nil
		}
	}
}

func (t *blockTable) put(prefix uint32, b *addrBlock) {
	if 2*(t.n+1) > len(t.slots) {
		old := t.slots
		t.slots, t.n = make([]blockSlot, max(64, 2*len(old))), 0
		t.shift = uint8(32 - bits.Len(uint(len(t.slots)-1)))
		for _, sl := range old {
			if sl.prefix != 0 {
				t.put(sl.prefix-1, sl.b)
			}
		}
	}
	b.prefix = prefix
	mask := len(t.slots) - 1
	i := t.home(prefix)
	for t.slots[i].prefix != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = blockSlot{prefix: prefix + 1, b: b}
	t.n++
}

// remove deletes prefix's block, moving later slots of its probe run back (no tombstones).
func (t *blockTable) remove(prefix uint32) {
	mask := len(t.slots) - 1
	i := t.home(prefix)
	for t.slots[i].prefix != prefix+1 {
		if t.slots[i].prefix == 0 {
			return
		}
		i = (i + 1) & mask
	}
	t.slots[i] = blockSlot{}
	t.n--
	for j := (i + 1) & mask; t.slots[j].prefix != 0; j = (j + 1) & mask {
		h := t.home(t.slots[j].prefix - 1)
		if (j-h)&mask >= (j-i)&mask { // h is not cyclically in (i, j]: the slot may move to i
			t.slots[i], t.slots[j] = t.slots[j], blockSlot{}
			i = j
		}
	}
}

// all returns the blocks (a copy: the caller may remove some).
func (t *blockTable) all() []*addrBlock {
	out := make([]*addrBlock, 0, t.n)
	for _, sl := range t.slots {
		if sl.prefix != 0 {
			out = append(out, sl.b)
		}
	}
	return out
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
		b := addr.As4()
		return m.get4(binary.BigEndian.Uint32(b[:]))
	}
	return m.get(keyOf(addr))
}

// get4 returns the entry of IPv4 address a, or nil.
func (m *addrMap) get4(a uint32) *entry {
	b := m.blocks.get(a >> blockBits)
	if b == nil {
		return nil
	}
	i := b.idx[a&(1<<blockBits-1)]
	if i == 0 {
		return nil
	}
	return m.entry(i - 1)
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
	b := m.blocks.get(a >> blockBits)
	if b == nil {
		b = &addrBlock{}
		m.blocks.put(a>>blockBits, b)
	}
	slot := &b.idx[a&(1<<blockBits-1)]
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
	b.n++
	m.n4++
	e := m.entry(i)
	e.reset()
	return e
}

// sweep calls drop for every entry and removes those for which it returns true.
func (m *addrMap) sweep(drop func(*entry) bool) {
	for _, b := range m.blocks.all() {
		for j, i := range b.idx {
			if i == 0 || !drop(m.entry(i-1)) {
				continue
			}
			m.entry(i - 1).reset()
			m.free = append(m.free, i-1)
			b.idx[j] = 0
			b.n--
			m.n4--
		}
		if b.n == 0 {
			m.blocks.remove(b.prefix)
		}
	}
	for k, e := range m.v6 {
		if drop(e) {
			delete(m.v6, k)
		}
	}
}

func (m *addrMap) len() int { return m.n4 + len(m.v6) }
