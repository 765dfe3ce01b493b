package attribute

import (
	"encoding/binary"
	"slices"
)

// decimalRoom is the most room appendDecimal needs past the end of its slice: twenty digits,
// and the eight-byte store of the last group may write past them.
const decimalRoom = 20 + 8

// appendDecimal appends v in decimal, as strconv.AppendUint(b, v, 10) does, eight digits at a
// time (digits8): a connection key's number mostly takes one group. It writes into b's
// capacity up to decimalRoom bytes past the end, of which the returned slice keeps the digits.
func appendDecimal(b []byte, v uint64) []byte {
	if cap(b)-len(b) < decimalRoom {
		b = slices.Grow(b, decimalRoom)
	}
	d := b[len(b) : len(b)+decimalRoom]
	if v < e8 { // (one store; the shift drops the leading zeros)
		n := decimalLen(v)
		binary.LittleEndian.PutUint64(d, digits8(v)>>(8*(8-n)&63))
		return b[:len(b)+n]
	}
	var g [3]uint64 // v's groups of eight digits, the most significant last
	k := 1
	for g[0] = v; g[k-1] >= e8; k++ {
		g[k-1], g[k] = g[k-1]%e8, g[k-1]/e8
	}
	n := decimalLen(g[k-1])
	binary.LittleEndian.PutUint64(d, digits8(g[k-1])>>(8*(8-n)&63))
	for i := k - 2; i >= 0; i, n = i-1, n+8 {
		binary.LittleEndian.PutUint64(d[n:], digits8(g[i]))
	}
	return b[:len(b)+n]
}

const e8 = 100_000_000

// digits8 returns the eight decimal digits of x < 10⁸ (leading zeros included) as ASCII bytes
// in a word, the first digit in the lowest byte. Each step splits every lane of the word at
// once — two 4-digit lanes into four of two digits, then into eight of one — dividing by a
// multiply and a shift that are exact for the lanes' ranges (x·5243>>19 = x/100 for x < 10⁴,
// x·103>>10 = x/10 for x < 100), with no product reaching the next lane.
func digits8(x uint64) uint64 {
	w := x/10000 | x%10000<<32
	q := w * 5243 >> 19 & 0x0000007f_0000007f
	w = q | (w-q*100)<<16
	t := w * 103 >> 10 & 0x000f000f_000f000f
	w = t | (w-t*10)<<8
	return w + 0x30303030_30303030
}

// decimalLen is the number of decimal digits of v (1 for 0).
func decimalLen(v uint64) int {
	n := 1
	for ; v >= 10000; v /= 10000 {
		n += 4
	}
	switch {
	case v >= 1000:
		return n + 3
	case v >= 100:
		return n + 2
	case v >= 10:
		return n + 1
	}
	return n
}
