package ownership

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"math/rand/v2"
)

// uidKey is a pod UID in an exact inline form of 16 bytes, kept in the owner's hot entry: a
// claim, Same and the UID index compare UIDs without reading the owner's UID bytes (a cache
// miss each in a large store). The forms (uidForm, kept in the meta):
//   - a canonical UUID (36 characters: lowercase hex digits, dashes at 8, 13, 18 and 23),
//     Kubernetes' UIDs, parsed to its 16 bytes;
//   - a UID of 1 to 15 bytes, stored as it is: its form is its length;
//   - anything else (uidLong) has no key and is compared by its bytes, after its fingerprint.
//
// Every string has exactly one form and, within a form, its own key: two UIDs are equal
// exactly when their forms and keys are, uidLong excepted. (A fingerprint is never taken for
// an identity; a key is the UID itself.)
type uidKey struct{ lo, hi uint64 }

// (A struct, not an array: Go passes and returns it in registers. A [2]uint64 went through
// memory, in copies whose 16-byte loads spanned smaller stores: ≈ 10 ns a claim.)

// UID forms besides the lengths 1..15.
const (
	uidNone = 0  // no UID
	uidUUID = 16 // a canonical UUID
	uidLong = 17 // compared by its bytes
)

// uidKeyOf returns uid's inline form and key.
func uidKeyOf(uid string) (uidKey, uint8) {
	switch n := len(uid); {
	case n == 0:
		return uidKey{}, uidNone
	case n < 16:
		return shortKey(uid), uint8(n)
	case n == 36:
		if k, ok := parseUUID(uid); ok {
			return k, uidUUID
		}
	}
	return uidKey{}, uidLong
}

// shortKey is the key of a UID of 1 to 15 bytes: its bytes in order, little endian, zero
// after the last. It loads words that overlap (a load across a copy's smaller stores to a
// buffer would wait for them).
func shortKey(uid string) uidKey {
	le := binary.LittleEndian
	switch n := len(uid); {
	case n >= 8: // bytes 8..n-1 are the top n-8 of the last eight
		return uidKey{le.Uint64([]byte(uid[:8])), le.Uint64([]byte(uid[n-8:])) >> (8 * (16 - n))}
	case n >= 4: // likewise with the last four
		return uidKey{lo: uint64(le.Uint32([]byte(uid[:4]))) | uint64(le.Uint32([]byte(uid[n-4:]))>>(8*(8-n)))<<32}
	}
	var k uint64
	for i := range len(uid) {
		k |= uint64(uid[i]) << (8 * i)
	}
	return uidKey{lo: k}
}

// parseUUIDWords parses a canonical UUID (lowercase: an uppercase one has form uidLong, so
// that each string keeps one form), eight digits at a time in a word (a digit at a time, the
// claims' comparisons spent most of their time here). Its key is the UUID's 16 bytes, read big
// endian in two halves. parseUUID is this where no vector parse is wired in (uuid_amd64.go).
func parseUUIDWords(s string) (uidKey, bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return uidKey{}, false
	}
	le := binary.LittleEndian
	w := [4]uint64{
		le.Uint64([]byte(s[0:8])),
		uint64(le.Uint32([]byte(s[9:13]))) | uint64(le.Uint32([]byte(s[14:18])))<<32,
		uint64(le.Uint32([]byte(s[19:23]))) | uint64(le.Uint32([]byte(s[24:28])))<<32,
		le.Uint64([]byte(s[28:36])),
	}
	if !hexDigits(w[0]) || !hexDigits(w[1]) || !hexDigits(w[2]) || !hexDigits(w[3]) {
		return uidKey{}, false
	}
	return uidKey{hex8(w[0])<<32 | hex8(w[1]), hex8(w[2])<<32 | hex8(w[3])}, true
}

const ones = 0x0101010101010101

// hexDigits reports whether the eight bytes of x are all lowercase hex digits.
func hexDigits(x uint64) bool {
	if x&(0x80*ones) != 0 {
		return false
	}
	// For bytes below 0x80, adding 0x80-lo sets a byte's top bit when it is >= lo, and adding
	// 0x7f-hi when it is > hi (no carry leaves a byte).
	digit := (x + 0x50*ones) &^ (x + 0x46*ones) // '0'..'9'
	alpha := (x + 0x1f*ones) &^ (x + 0x19*ones) // 'a'..'f'
	return (digit|alpha)&(0x80*ones) == 0x80*ones
}

// hex8 is the value of the eight hex digits in x (the first in its lowest byte).
func hex8(x uint64) uint64 {
	n := x&(0x0f*ones) + (x>>6&ones)*9 // each byte's digit value
	n = (n<<4 | n>>8) & 0x00ff00ff00ff00ff
	n = (n<<8 | n>>16) & 0x0000ffff0000ffff
	return (n<<16 | n>>32) & 0xffffffff
}

// uidRef is a UID prepared for comparisons with owners' UIDs: its form, key and fingerprint.
type uidRef struct {
	s    string
	key  uidKey
	form uint8
	uh   uint32
}

func uidRefOf(uid string) uidRef {
	k, f := uidKeyOf(uid)
	return uidRef{s: uid, key: k, form: f, uh: uidFingerprint(k, f, uid)}
}

// uidCmpOf is uidRefOf for comparisons with owners' UIDs (uidIs) only, not for the UID
// index: the fingerprint, which uidIs reads only for a uidLong UID, is taken only for one
// (≈ 7 ns less for each of the local claims).
func uidCmpOf(uid string) uidRef {
	k, f := uidKeyOf(uid)
	var uh uint32
	if f == uidLong {
		uh = uidFingerprint(k, f, uid)
	}
	return uidRef{s: uid, key: k, form: f, uh: uh}
}

// uidSeed seeds UIDs' fingerprints: they are the process's own, so UIDs chosen to share one
// (and so lengthen the UID index's probe runs, or make claims compare more bytes) cannot be
// made from outside.
var (
	uidSeed            = maphash.MakeSeed()
	uidSeed0, uidSeed1 = rand.Uint64(), rand.Uint64()
	uidSeedMix         = rand.Uint64() | 1
)

// uidFingerprint is a pod UID's fingerprint (0 for none), from its form and key (the whole
// UID, for those forms) or its bytes: it places the UID in the UID index and is compared
// before a uidLong UID's bytes. A match is never taken for identity. (A keyed UID is mixed
// by two seeded 128-bit multiplications, as a hash of 24 bytes costs a claim ≈ 10 ns more.)
func uidFingerprint(k uidKey, form uint8, uid string) uint32 {
	var x uint64
	switch form {
	case uidNone:
		return 0
	case uidLong:
		x = maphash.String(uidSeed, uid)
	default:
		x = fold(k.lo^uidSeed0, k.hi^uidSeed1^uint64(form)<<56)
		x = fold(x, uidSeedMix)
	}
	return uint32(x>>32) | 1
}

// fold multiplies a and b to 128 bits and returns the halves xored.
func fold(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}
