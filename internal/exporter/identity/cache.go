package identity

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
)

// cache is a bounded map from key to workload with the clock (second chance) policy: a hit
// only sets a reference bit under a read lock, so hits from many goroutines do not serialize;
// when full, an insert evicts the first entry the clock hand finds unreferenced.
type cache struct {
	mu    sync.RWMutex
	index map[uint64]int32 // key → slot
	slots []slot
	hand  int
}

type slot struct {
	key     uint64
	w       flow.Workload
	expires time.Time // zero: never
	ref     atomic.Bool
}

func newCache(size int) *cache {
	size = max(size, 1)
	return &cache{index: make(map[uint64]int32, size), slots: make([]slot, 0, size)}
}

// get returns the workload stored for key, unless it has expired by now() (now is called only
// for entries that can expire).
func (c *cache) get(key uint64, now func() time.Time) (flow.Workload, bool) {
	c.mu.RLock()
	i, ok := c.index[key]
	if !ok {
		c.mu.RUnlock()
		return flow.Workload{}, false
	}
	s := &c.slots[i]
	if !s.expires.IsZero() && !now().Before(s.expires) {
		c.mu.RUnlock()
		return flow.Workload{}, false
	}
	if !s.ref.Load() {
		s.ref.Store(true)
	}
	w := s.w
	c.mu.RUnlock()
	return w, true
}

// put stores w for key until expires (zero: for good) and reports whether it evicted an entry.
func (c *cache) put(key uint64, w flow.Workload, expires time.Time) (evicted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.index[key]; ok {
		s := &c.slots[i]
		s.w, s.expires = w, expires
		s.ref.Store(true)
		return false
	}
	if len(c.slots) < cap(c.slots) {
		c.slots = c.slots[:len(c.slots)+1]
		s := &c.slots[len(c.slots)-1]
		s.key, s.w, s.expires = key, w, expires
		c.index[key] = int32(len(c.slots) - 1)
		return false
	}
	for {
		s := &c.slots[c.hand]
		if s.ref.Load() {
			s.ref.Store(false)
			c.hand = (c.hand + 1) % len(c.slots)
			continue
		}
		delete(c.index, s.key)
		s.key, s.w, s.expires = key, w, expires
		c.index[key] = int32(c.hand)
		c.hand = (c.hand + 1) % len(c.slots)
		return true
	}
}

// len returns the number of entries.
func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.slots)
}
