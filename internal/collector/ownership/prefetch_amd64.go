package ownership

// prefetchAll asks the CPU to bring the cache line at each address in ps into the cache
// without waiting for it: unlike a load, a prefetch never holds up the instructions after it,
// so the misses of the next chunk overlap with the work on this one. An address may be any
// value (a prefetch never faults). A pipeline step's lines go in one call: a call into
// assembly spills the caller's live values, so a call a line cost more than the prefetches.
//
//go:noescape
func prefetchAll(ps []uintptr)
