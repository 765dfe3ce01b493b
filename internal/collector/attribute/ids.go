package attribute

// idList is a list of entries named by their index, as peers and translations keep theirs:
// id 0 names none, and released ids are handed out again before the list grows.
type idList[T any] struct {
	list []T
	free []uint32 // released ids
}

// newID returns the id of a zero entry: a released one, else one appended.
func (l *idList[T]) newID() uint32 {
	if len(l.list) == 0 {
		l.list = make([]T, 1, 64) // id 0: none
	}
	if n := len(l.free); n > 0 {
		id := l.free[n-1]
		l.free = l.free[:n-1]
		var zero T
		l.list[id] = zero
		return id
	}
	var zero T
	l.list = append(l.list, zero)
	return uint32(len(l.list) - 1)
}

// release hands id out again.
func (l *idList[T]) release(id uint32) { l.free = append(l.free, id) }

// inUse is how many ids are handed out and not released.
func (l *idList[T]) inUse() int { return max(len(l.list)-1, 0) - len(l.free) }

// letGoUnused gives the storage back when no id is handed out and it is worth reclaiming.
func (l *idList[T]) letGoUnused() {
	if l.inUse() == 0 && cap(l.list) >= 4096 {
		l.list, l.free = nil, nil
	}
}
