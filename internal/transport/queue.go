package transport

import (
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// outBatch is one encoded batch on its way to the collector.
type outBatch struct {
	body      []byte              // everything but the header (sequence, counters)
	counters  []flowbatch.Counter // attached when the sequence is assigned
	records   int                 // records + aggregates, for drop accounting
	seq       uint64              // 0 until first sent
	data      []byte              // header + body, once seq is assigned
	inflight  bool
	heartbeat bool
}

func (b *outBatch) size() int { return len(b.body) + len(b.data) }

// queue holds batches awaiting delivery, oldest first, bounded in bytes: when a new batch
// does not fit, the oldest batches not in flight are dropped (and reported to the caller).
type queue struct {
	items []*outBatch
	bytes int
	limit int
}

// push appends b and returns the batches dropped to make room.
func (q *queue) push(b *outBatch) (dropped []*outBatch) {
	q.items = append(q.items, b)
	q.bytes += b.size()
	for q.bytes > q.limit {
		i := 0
		for i < len(q.items) && q.items[i].inflight {
			i++
		}
		if i >= len(q.items) {
			break // everything is in flight: the bound is exceeded until acknowledgements come
		}
		d := q.items[i]
		q.remove(i)
		dropped = append(dropped, d)
	}
	return dropped
}

func (q *queue) remove(i int) {
	q.bytes -= q.items[i].size()
	copy(q.items[i:], q.items[i+1:])
	q.items[len(q.items)-1] = nil
	q.items = q.items[:len(q.items)-1]
}

// done removes b (delivered or finally rejected).
func (q *queue) done(b *outBatch) {
	for i, it := range q.items {
		if it == b {
			q.remove(i)
			return
		}
	}
}

// take picks up to n batches not in flight, alternating newest and oldest so a backlog drains
// while fresh data keeps flowing; they are marked in flight.
func (q *queue) take(n int) []*outBatch {
	var out []*outBatch
	lo, hi := 0, len(q.items)-1
	newest := true
	for len(out) < n && lo <= hi {
		var b *outBatch
		if newest {
			b = q.items[hi]
			hi--
		} else {
			b = q.items[lo]
			lo++
		}
		if b.inflight {
			continue
		}
		newest = !newest
		b.inflight = true
		out = append(out, b)
	}
	return out
}

// release returns batches to the queue for a later attempt.
func (q *queue) release(bs []*outBatch) {
	for _, b := range bs {
		b.inflight = false
	}
}
