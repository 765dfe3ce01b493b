package ownership

// prefetch asks the CPU to bring the cache line at p into the cache without waiting for it:
// unlike a load, a prefetch never holds up the instructions after it, so the misses of the
// next chunk overlap with the work on this one. p may be any address (a prefetch never
// faults).
//
//go:noescape
func prefetch(p uintptr)

// prefetch2 is two prefetches in one call: a call from Go spills the caller's live values,
// so a pair of lines wanted together costs one call, not two.
//
//go:noescape
func prefetch2(p, q uintptr)
