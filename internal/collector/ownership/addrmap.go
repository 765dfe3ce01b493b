package ownership

import (
	"encoding/binary"
	"net/netip"
)

// addrMap maps addresses to their entries. IPv4 addresses (nearly all of a cluster's) go
// through a two-level index with address locality: a map from the address's /26 to a block of
// 64 entry numbers (pods take their addresses from their node's podCIDR, so a node's pods
// share a few blocks, and 100,000 pods need ≈ 400 KB of blocks: the index stays in the
// cache), and the entries themselves live in stable chunks, their first ranges inline. A
// claim or a lookup so costs one cache miss (the entry and its ranges, adjacent) where a Go
// map of entry pointers cost three (the map's group, the entry, its ranges). Other
// addresses map by their 16 bytes.
type addrMap struct {
	blocks map[uint32]*addrBlock // address>>blockBits → its block
	chunks []*[chunkSize]entry   // IPv4 entries, by number
	free   []uint32              // entry numbers to reuse
	n4     int                   // IPv4 entries in use
	v6     map[ipKey]*entry
}

const (
	blockBits = 6
	chunkBits = 10
	chunkSize = 1 << chunkBits
)

// addrBlock holds the entry numbers (plus one; 0: none) of the addresses of one /26.
type addrBlock struct {
	idx [1 << blockBits]uint32
	n   int
}

func newAddrMap() addrMap {
	return addrMap{blocks: map[uint32]*addrBlock{}, v6: map[ipKey]*entry{}}
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
	b := m.blocks[a>>blockBits]
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
	b := m.blocks[a>>blockBits]
	if b == nil {
		b = &addrBlock{}
		m.blocks[a>>blockBits] = b
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
	for p, b := range m.blocks {
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
			delete(m.blocks, p)
		}
	}
	for k, e := range m.v6 {
		if drop(e) {
			delete(m.v6, k)
		}
	}
}

func (m *addrMap) len() int { return m.n4 + len(m.v6) }
