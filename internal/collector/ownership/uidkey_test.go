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
