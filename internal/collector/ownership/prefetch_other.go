//go:build !amd64

package ownership

// prefetchAll does nothing where no prefetch instruction is wired in (see prefetch_amd64.go).
func prefetchAll([]uintptr) {}
