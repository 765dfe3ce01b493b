package ownership

import "encoding/binary"

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
type uidKey [2]uint64

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
		var b [16]byte
		copy(b[:], uid)
		return uidKey{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}, uint8(n)
	case n == 36:
		if k, ok := parseUUID(uid); ok {
			return k, uidUUID
		}
	}
	return uidKey{}, uidLong
}

// parseUUID parses a canonical UUID (lowercase: an uppercase one has form uidLong, so that
// each string keeps one form).
func parseUUID(s string) (uidKey, bool) {
	if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return uidKey{}, false
	}
	var k [2]uint64
	bad := byte(0)
	j := 0
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		v := hexVal[s[i]]
		bad |= v
		k[j>>4] = k[j>>4]<<4 | uint64(v&0xf)
		j++
	}
	if bad&0x80 != 0 {
		return uidKey{}, false
	}
	return uidKey(k), true
}

// hexVal maps a lowercase hex digit to its value, anything else to 0x80.
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0x80
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
	}
	return t
}()

// uidRef is a UID prepared for comparisons with owners' UIDs: its form, key and fingerprint.
type uidRef struct {
	s    string
	key  uidKey
	form uint8
	uh   uint32
}

func uidRefOf(uid string) uidRef {
	k, f := uidKeyOf(uid)
	return uidRef{s: uid, key: k, form: f, uh: uidHash(uid)}
}
