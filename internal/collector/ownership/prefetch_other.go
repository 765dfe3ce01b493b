//go:build !amd64

package ownership

func prefetch(uintptr) {}

func prefetchAll([]uintptr) {}
