//go:build !amd64

package ownership

// parseUUID parses a canonical UUID a word at a time (parseUUIDWords).
func parseUUID(s string) (uidKey, bool) { return parseUUIDWords(s) }
