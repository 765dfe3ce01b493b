package ingest

import (
	"container/list"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// limiter is a token bucket of bytes per exporter, so a flood from one exporter is refused
// (retryably) without starving the others. It remembers at most max exporters.
type limiter struct {
	mu    sync.Mutex
	rate  float64
	burst float64
	max   int
	clock func() time.Time
	m     map[string]*bucket
	lru   *list.List
}

type bucket struct {
	tokens float64
	last   time.Time
	elem   *list.Element
}

func newLimiter(rate float64, burst, max int, clock func() time.Time) *limiter {
	return &limiter{rate: rate, burst: float64(burst), max: max, clock: clock, m: make(map[string]*bucket), lru: list.New()}
}

func (l *limiter) allow(exporter string, n int) bool {
	if l.rate <= 0 {
		return true
	}
	now := l.clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[exporter]
	if !ok {
		if len(l.m) >= l.max {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.m, old.Value.(string))
		}
		b = &bucket{tokens: l.burst, last: now}
		b.elem = l.lru.PushFront(exporter)
		l.m[exporter] = b
	} else {
		l.lru.MoveToFront(b.elem)
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// peekExporterID reads the exporter id (field 3) of an encoded batch without decoding the
// rest, so the rate limit applies before the expensive decode. "" when absent or malformed.
func peekExporterID(b []byte) string {
	id := ""
	for len(b) > 0 {
		// Fast path: a one-byte tag of a length-delimited field shorter than 128 bytes (the
		// records).
		if t := b[0]; t >= 8 && t < 0x80 && t&7 == byte(protowire.BytesType) && len(b) > 1 && b[1] < 0x80 {
			n := 2 + int(b[1])
			if n > len(b) {
				return id
			}
			if t == 3<<3|byte(protowire.BytesType) {
				id = string(b[2:n])
			}
			b = b[n:]
			continue
		}
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return id
		}
		b = b[n:]
		if num == 3 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return id
			}
			id = string(v)
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return id
		}
		b = b[m:]
	}
	return id
}

// rateLog logs at most one message per key and period, then how many it suppressed.
type rateLog struct {
	log    *slog.Logger
	period time.Duration
	clock  func() time.Time
	mu     sync.Mutex
	last   map[string]time.Time
	quiet  map[string]int
}

func newRateLog(log *slog.Logger, period time.Duration, clock func() time.Time) *rateLog {
	return &rateLog{log: log, period: period, clock: clock, last: map[string]time.Time{}, quiet: map[string]int{}}
}

func (r *rateLog) ok(key string) (bool, int) {
	now := r.clock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, seen := r.last[key]; seen && now.Sub(t) < r.period {
		r.quiet[key]++
		return false, 0
	}
	if len(r.last) > 1024 {
		clear(r.last)
	}
	r.last[key] = now
	n := r.quiet[key]
	delete(r.quiet, key)
	return true, n
}

func (r *rateLog) warn(key, msg string, args ...any) {
	if ok, n := r.ok(key); ok {
		r.log.Warn(msg, append(args, "suppressed", n)...)
	}
}

func (r *rateLog) error(key, msg string, args ...any) {
	if ok, n := r.ok(key); ok {
		r.log.Error(msg, append(args, "suppressed", n)...)
	}
}
