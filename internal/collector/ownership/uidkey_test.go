package ownership

import (
	"fmt"
	"strings"
	"testing"
)

// TestUIDKeyIsExact: two UIDs have the same form and key exactly when they are equal (uidLong
// UIDs excepted, which are compared by their bytes), and owners compare UIDs as strings do.
func TestUIDKeyIsExact(t *testing.T) {
	uuid := "0123abcd-4567-89ef-0123-456789abcdef"
	uids := []string{"", "a", "uid-00000001", "uid-00000002", "uid-0000000001", "123456789012345", "1234567890123456",
		uuid, strings.ToUpper(uuid), strings.Replace(uuid, "-", "_", 1), "0123abcd-4567-89ef-0123-456789abcdeg",
		"0123abcd-4567-89ef-0123-456789abcdee", "00000000-0000-0000-0000-000000000000", "0123abcd04567-89ef-0123-456789abcdef",
		"x\x00", "x", "\x00", "0123abcd-4567-89ef-0123-456789abcdef0", "0000000000000000000000000000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"}
	for i := range 300 {
		uids = append(uids, fmt.Sprintf("%08x-0000-4000-8000-%012x", i%17, i), fmt.Sprintf("uid-%d", i))
	}
	forms := map[uint8]bool{}
	for _, a := range uids {
		ka, fa := uidKeyOf(a)
		forms[fa] = true
		for _, b := range uids {
			kb, fb := uidKeyOf(b)
			same := fa == fb && ka == kb
			if fa == uidLong && fb == uidLong {
				same = a == b
			}
			if same != (a == b) {
				t.Errorf("%q (form %d, key %x) and %q (form %d, key %x): same %v", a, fa, ka, b, fb, kb, same)
			}
		}
	}
	for _, f := range []uint8{uidNone, 1, 12, 15, uidUUID, uidLong} {
		if !forms[f] {
			t.Errorf("form %d not covered", f)
		}
	}
}

// TestParseUUID compares parseUUID with a digit-at-a-time parse, for every byte value at
// every position of a UUID.
func TestParseUUID(t *testing.T) {
	ref := func(s string) (uidKey, bool) {
		if len(s) != 36 {
			return uidKey{}, false
		}
		var k [2]uint64
		j := 0
		for i := range 36 {
			if i == 8 || i == 13 || i == 18 || i == 23 {
				if s[i] != '-' {
					return uidKey{}, false
				}
				continue
			}
			c := s[i]
			var v byte
			switch {
			case '0' <= c && c <= '9':
				v = c - '0'
			case 'a' <= c && c <= 'f':
				v = c - 'a' + 10
			default:
				return uidKey{}, false
			}
			k[j/16] = k[j/16]<<4 | uint64(v)
			j++
		}
		return uidKey{k[0], k[1]}, true
	}
	base := []byte("0123abcd-4567-89ef-0123-456789abcdef")
	for i := range base {
		for c := range 256 {
			b := append([]byte(nil), base...)
			b[i] = byte(c)
			wk, wok := ref(string(b))
			gk, gok := parseUUID(string(b))
			if wk != gk || wok != gok {
				t.Fatalf("%q: parseUUID %x %v, want %x %v", b, gk, gok, wk, wok)
			}
		}
	}
	for _, s := range []string{"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", "fedcba98-7654-3210-0f1e-2d3c4b5a6978", "short"} {
		wk, wok := ref(s)
		if gk, gok := parseUUID(s); wk != gk || wok != gok {
			t.Errorf("%q: parseUUID %x %v, want %x %v", s, gk, gok, wk, wok)
		}
	}
}
