package ownership

import (
	"syscall"
	"unsafe"
)

// Linux's madvise advice values (not all in package syscall).
const (
	madvHugePage = 14
	madvCollapse = 25 // Linux 6.1 on
	hugePage     = 2 << 20
)

// adviseHuge asks the kernel to back the 2 MB regions holding [p, p+n) with huge pages, and to
// do it now for the pages already there (MADV_COLLAPSE): a lookup in a store of 100,000 pods
// reads a random entry and owner, and with 4 KB pages each such read also walks the page
// tables — the core's TLB covers ≈ 8 MB. Only the page size changes: the contents stay (the
// regions may hold other objects of the Go heap, which is then backed by huge pages too).
// Errors are ignored: a kernel without transparent huge pages keeps 4 KB ones.
func adviseHuge(p unsafe.Pointer, n uintptr) {
	start := uintptr(p) &^ (hugePage - 1)
	end := (uintptr(p) + n + hugePage - 1) &^ (hugePage - 1)
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, start, end-start, madvHugePage)
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, start, end-start, madvCollapse)
}
