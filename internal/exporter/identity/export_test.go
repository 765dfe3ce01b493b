package identity

// ByHandle reports whether r resolves cgroup ids with open_by_handle_at.
func ByHandle(r *Resolver) bool { return r.handle != nil }

// ResolvePath resolves a cgroup id to its path, bypassing the cache and the walk's index.
func ResolvePath(r *Resolver, id uint64) (string, error) {
	r.walkMu.Lock()
	r.walked = nil
	r.walkMu.Unlock()
	return r.paths(id)
}
