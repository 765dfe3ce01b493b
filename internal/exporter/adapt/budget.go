package adapt

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Level is how much the exporter degrades.
type Level int

// Levels.
const (
	Full    Level = iota // every flow as its own record
	Folding              // short final flows folded into aggregates
)

// ProcessCPU returns this process's user+system CPU time (getrusage).
func ProcessCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Budget enforces a CPU budget by measuring the process's own use: Tick it regularly (e.g.
// every second); Level turns to Folding when usage over the last window exceeds the budget and
// back to Full once it has stayed under 70% of it for as long.
type Budget struct {
	cores  float64
	window time.Duration
	usage  func() time.Duration
	clock  func() time.Time

	mu        sync.Mutex
	lastCPU   time.Duration
	lastAt    time.Time
	level     Level
	calmSince time.Time
	used      float64 // cores used over the last window
	degraded  uint64  // ticks spent in Folding
}

// NewBudget returns a Budget of cores, measured over window with the usage source and clock.
func NewBudget(cores float64, window time.Duration, usage func() time.Duration, clock func() time.Time) *Budget {
	return &Budget{cores: cores, window: window, usage: usage, clock: clock, lastCPU: usage(), lastAt: clock()}
}

// Tick samples usage; when a window has elapsed it updates and returns the level.
func (b *Budget) Tick() Level {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock()
	el := now.Sub(b.lastAt)
	if el < b.window {
		return b.level
	}
	cpu := b.usage()
	b.used = float64(cpu-b.lastCPU) / float64(el)
	b.lastCPU, b.lastAt = cpu, now
	switch {
	case b.used > b.cores:
		b.level, b.calmSince = Folding, time.Time{}
	case b.level == Folding && b.used < 0.7*b.cores:
		if b.calmSince.IsZero() {
			b.calmSince = now
		} else if now.Sub(b.calmSince) >= b.window {
			b.level = Full
		}
	default:
		b.calmSince = time.Time{}
	}
	if b.level == Folding {
		b.degraded++
	}
	return b.level
}

// Level is the current level.
func (b *Budget) Level() Level {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.level
}

// Used is the cores used over the last window.
func (b *Budget) Used() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
