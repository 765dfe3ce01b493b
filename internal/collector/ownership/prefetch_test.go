package ownership

import (
	"testing"
	"unsafe"
)

// TestPrefetchAllAnyAddress runs prefetchAll over lists of every length through both of its
// loops (four at a time, then one by one), with addresses no load could read: a prefetch must
// never fault, whatever a pipeline computed from a stale slot.
func TestPrefetchAllAnyAddress(t *testing.T) {
	buf := make([]byte, 4096)
	var ps []uintptr
	for n := range 11 {
		prefetchAll(ps)
		switch n % 3 {
		case 0:
			ps = append(ps, uintptr(unsafe.Pointer(&buf[n*64])))
		case 1:
			ps = append(ps, 0)
		default:
			ps = append(ps, ^uintptr(0)-uintptr(n))
		}
	}
	var pf prefetches
	for range warmChunk * 5 {
		pf.add2(uintptr(unsafe.Pointer(&buf[0])), 8)
	}
	pf.issue()
	if pf.n != 0 {
		t.Fatalf("issue left %d lines", pf.n)
	}
}
