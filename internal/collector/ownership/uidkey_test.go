package ownership

import (
	"fmt"
	"math/rand/v2"
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

// TestParseUUID compares parseUUID (the vector parse where there is one) and parseUUIDWords
// with a digit-at-a-time parse, for every byte value at every position of a UUID.
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
	check := func(s string) {
		t.Helper()
		wk, wok := ref(s)
		for name, parse := range map[string]func(string) (uidKey, bool){"parseUUID": parseUUID, "parseUUIDWords": parseUUIDWords} {
			if gk, gok := parse(s); wk != gk || wok != gok {
				t.Fatalf("%q: %s %x %v, want %x %v", s, name, gk, gok, wk, wok)
			}
		}
	}
	base := []byte("0123abcd-4567-89ef-0123-456789abcdef")
	for i := range base {
		for c := range 256 {
			b := append([]byte(nil), base...)
			b[i] = byte(c)
			check(string(b))
		}
	}
	for _, s := range []string{"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", "fedcba98-7654-3210-0f1e-2d3c4b5a6978",
		"short", "0123abcd-4567-89ef-0123-456789abcdef0", "0123abcd-4567-89ef-0123-456789abcde"} {
		check(s)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 { // random digits, so that every digit value meets every position
		b := []byte("00000000-0000-0000-0000-000000000000")
		for i := range b {
			if b[i] != '-' {
				b[i] = "0123456789abcdef"[rng.IntN(16)]
			}
		}
		check(string(b))
	}
}

// BenchmarkParseUUID compares the two parses in one run, over 1,024 distinct UUIDs (in the
// cache: the parse's compute alone).
func BenchmarkParseUUID(b *testing.B) {
	uids := make([]string, 1024)
	for i := range uids {
		uids[i] = fmt.Sprintf("%08x-7d9f-4c1e-8a3b-%012x", i*7919, i)
	}
	for name, parse := range map[string]func(string) (uidKey, bool){"vector": parseUUID, "words": parseUUIDWords} {
		b.Run(name, func(b *testing.B) {
			var x uint64
			for i := range b.N {
				k, _ := parse(uids[i&(len(uids)-1)])
				x += k.lo ^ k.hi
			}
			if x == 1 {
				b.Log(x) // keeps the parses
			}
		})
	}
}
