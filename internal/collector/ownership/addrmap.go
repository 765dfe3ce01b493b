package ownership

import "encoding/binary"

// addrMap maps addresses to their entries: IPv4 addresses (nearly all of a cluster's) by a
// 4-byte key, which the runtime's map hashes and compares in a few instructions and stores in
// 16-byte slots, the others by their 16 bytes.
type addrMap struct {
	v4 map[uint32]*entry
	v6 map[ipKey]*entry
}

func newAddrMap() addrMap { return addrMap{v4: map[uint32]*entry{}, v6: map[ipKey]*entry{}} }

var v4InV6 = [12]byte{10: 0xff, 11: 0xff}

// v4 returns the IPv4 address in k (an IPv4-mapped IPv6 key, as keyOf makes).
func (k *ipKey) v4() (uint32, bool) {
	if [12]byte(k[:12]) != v4InV6 {
		return 0, false
	}
	return binary.BigEndian.Uint32(k[12:]), true
}

func (m *addrMap) get(k ipKey) *entry {
	if a, ok := k.v4(); ok {
		return m.v4[a]
	}
	return m.v6[k]
}

func (m *addrMap) put(k ipKey, e *entry) {
	if a, ok := k.v4(); ok {
		m.v4[a] = e
		return
	}
	m.v6[k] = e
}

// sweep calls drop for every entry and removes those for which it returns true.
func (m *addrMap) sweep(drop func(*entry) bool) {
	for a, e := range m.v4 {
		if drop(e) {
			delete(m.v4, a)
		}
	}
	for k, e := range m.v6 {
		if drop(e) {
			delete(m.v6, k)
		}
	}
}

func (m *addrMap) len() int { return len(m.v4) + len(m.v6) }
