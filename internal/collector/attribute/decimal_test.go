package attribute

import (
	"encoding/binary"
	"math"
	"strconv"
	"testing"
)

func TestAppendDecimal(t *testing.T) {
	vals := []uint64{0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 9999, 10000, 10001, 99999, 123456789,
		math.MaxUint32, math.MaxUint64, math.MaxUint64 - 1, 1 << 63}
	for p := uint64(1); p < math.MaxUint64/10; p *= 10 {
		vals = append(vals, p-1, p, p+1)
	}
	for x := uint64(1); x != 0; x = x*6364136223846793005 + 1442695040888963407 {
		if vals = append(vals, x, x>>17, x>>40); len(vals) > 3000 {
			break
		}
	}
	for _, v := range vals {
		got, want := string(appendDecimal([]byte("exp-1/"), v)), "exp-1/"+strconv.FormatUint(v, 10)
		if got != want {
			t.Fatalf("appendDecimal(%d) = %q, want %q", v, got, want)
		}
	}
}

// TestDigits8 checks every x < 10⁸ against a counter of eight ASCII digits.
func TestDigits8(t *testing.T) {
	want := [8]byte{'0', '0', '0', '0', '0', '0', '0', '0'}
	for x := range uint64(100_000_000) {
		if got := digits8(x); got != binary.LittleEndian.Uint64(want[:]) {
			t.Fatalf("digits8(%d) = %#x, want %q", x, got, want)
		}
		for i := 7; i >= 0; i-- { // want = x+1
			if want[i]++; want[i] <= '9' {
				break
			}
			want[i] = '0'
		}
	}
}
