package ownership

import "unsafe"

// parseUUID parses a canonical UUID (see parseUUIDWords) with SSE2, all 32 digits at once: ≈ 90
// instructions with its call (callgrind) where the word-at-a-time parse takes ≈ 200, once for
// every claim that the claims' memo does not answer.
func parseUUID(s string) (uidKey, bool) {
	if len(s) != 36 {
		return uidKey{}, false
	}
	lo, hi, ok := parseUUID36(unsafe.StringData(s))
	return uidKey{lo, hi}, ok
}

// parseUUID36 is parseUUID of the 36 bytes at p (uuid_amd64.s).
//
//go:noescape
func parseUUID36(p *byte) (lo, hi uint64, ok bool)
