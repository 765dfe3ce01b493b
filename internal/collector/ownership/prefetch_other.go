//go:build !amd64

package ownership

// prefetch does nothing where no prefetch instruction is wired in (see prefetch_amd64.go).
func prefetch(uintptr) {}

// prefetch2 does nothing here either.
func prefetch2(uintptr, uintptr) {}
