package transport

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/flowscope/flowscope/internal/exporter/adapt"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// headerRoom is kept free in a datagram for the sequence number and a few counters.
const headerRoom = 96

// runBatcher cuts pending records into encoded batches every FlushInterval, or sooner when a
// batch is full; on shutdown it cuts what is left.
func (s *Shipper) runBatcher(ctx context.Context) error {
	enc := flowbatch.NewEncoder()
	t := time.NewTicker(s.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.cut(enc, true)
			return nil
		case <-t.C:
			s.cut(enc, true)
		case <-s.kickBatch:
			s.cut(enc, false)
		}
	}
}

// cut encodes the pending records (all of them when flush, else only full batches) and the
// pending heartbeat into batches and queues them; a flush queues the open batch too.
func (s *Shipper) cut(enc *flowbatch.Encoder, flush bool) {
	s.mu.Lock()
	opened := s.open.Len() > 0
	if flush && opened {
		s.closeOpenLocked()
	}
	n := len(s.pending)
	if !flush {
		n -= n % s.cfg.BatchSize
	}
	// Swap buffers instead of copying: the batcher owns recs until the next cut.
	recs := s.pending[:n]
	s.pending = append(s.spare[:0], s.pending[n:]...)
	s.spare = recs[:0]
	hb := s.heartbeat
	s.heartbeat = nil
	folding := s.budget != nil && s.budget.Tick() == adapt.Folding
	udp := s.links[s.cur].name() == UDP
	emptyFlush := flush && n == 0 && hb == nil && len(s.counters) > 0 && len(s.q.items) == 0
	s.mu.Unlock()
	if flush && opened {
		kick(s.kickSend)
	}

	if kept := validRecords(recs); len(kept) < len(recs) {
		s.mu.Lock()
		s.dropInvalidLocked(len(recs) - len(kept))
		s.mu.Unlock()
		recs = kept
	}
	var aggs []flowbatch.Aggregate
	if folding {
		before := len(recs)
		recs, aggs = adapt.Fold(recs, DefaultFoldShorterThan)
		if folded := before - len(recs); folded > 0 {
			s.m.folded.Add(float64(folded))
			s.AddCounters(map[string]uint64{CounterDegradedFlows: uint64(folded)})
		}
	}
	maxBytes := 0
	if udp {
		maxBytes = s.cfg.UDPMaxBytes - headerRoom
		// Group records by local workload so a datagram carries few workload identities.
		slices.SortStableFunc(recs, func(a, b flow.Record) int { return cmp.Compare(a.CgroupID, b.CgroupID) })
	}
	var out []*outBatch
	out = append(out, s.encodeChunks(enc, &flowbatch.Batch{Records: recs}, maxBytes)...)
	out = append(out, s.encodeChunks(enc, &flowbatch.Batch{Aggregates: aggs}, maxBytes)...)
	if hb != nil {
		out = append(out, s.encodeHeartbeat(enc, hb, maxBytes)...)
	}
	if emptyFlush { // nothing else is going out: carry the counters in an empty batch
		out = append(out, s.encodeChunks(enc, &flowbatch.Batch{}, 0)...)
	}
	if len(out) == 0 {
		return
	}
	s.mu.Lock()
	for _, b := range out {
		s.queueLocked(b)
	}
	s.mu.Unlock()
	kick(s.kickSend)
}

func (s *Shipper) header() flowbatch.Header {
	return flowbatch.Header{Major: flowbatch.MajorVersion, Minor: flowbatch.MinorVersion,
		ExporterID: s.cfg.ExporterID, NodeName: s.cfg.NodeName, BootID: s.bootID}
}

// encodeChunks encodes b's records (or aggregates) in batches of at most BatchSize entries
// and, when maxBytes > 0, at most maxBytes bytes. An empty b yields one empty batch only
// when it is neither records nor aggregates (the counters-only case is the caller's choice).
func (s *Shipper) encodeChunks(enc *flowbatch.Encoder, b *flowbatch.Batch, maxBytes int) []*outBatch {
	recs, aggs := b.Records, b.Aggregates
	if len(recs) == 0 && len(aggs) == 0 {
		if b.Heartbeat == nil && b.Records == nil && b.Aggregates == nil {
			return s.encodeOne(enc, &flowbatch.Batch{Header: s.header()}, 0)
		}
		return nil
	}
	var out []*outBatch
	step := s.cfg.BatchSize
	if maxBytes > 0 {
		step = min(step, max(1, maxBytes/64))
	}
	for len(recs) > 0 || len(aggs) > 0 {
		k := min(step, max(len(recs), len(aggs)))
		for {
			chunk := &flowbatch.Batch{Header: s.header()}
			if len(recs) > 0 {
				chunk.Records = recs[:min(k, len(recs))]
			} else {
				chunk.Aggregates = aggs[:min(k, len(aggs))]
			}
			ob := s.encodeOne(enc, chunk, k)
			if ob == nil {
				return out
			}
			if maxBytes > 0 && len(ob[0].body) > maxBytes && k > 1 {
				k = max(1, k*maxBytes/len(ob[0].body)*9/10)
				continue
			}
			out = append(out, ob...)
			if len(recs) > 0 {
				recs = recs[len(chunk.Records):]
			} else {
				aggs = aggs[len(chunk.Aggregates):]
			}
			break
		}
	}
	return out
}

func (s *Shipper) encodeOne(enc *flowbatch.Encoder, b *flowbatch.Batch, n int) []*outBatch {
	body, err := enc.AppendBody(s.buffer(flowbatch.BodySizeHint(len(b.Records)+len(b.Aggregates))), b)
	if err != nil {
		s.log.Error("encoding a batch failed; its records are dropped", "err", err)
		s.mu.Lock()
		s.countDroppedRecordsLocked(len(b.Records)+len(b.Aggregates), "encode")
		s.mu.Unlock()
		return nil
	}
	return []*outBatch{{body: body, records: len(b.Records) + len(b.Aggregates)}}
}

// encodeHeartbeat encodes a heartbeat, split over several batches when it does not fit a
// datagram (the parts are then not Complete: absence from one part proves nothing).
func (s *Shipper) encodeHeartbeat(enc *flowbatch.Encoder, hb *flowbatch.Heartbeat, maxBytes int) []*outBatch {
	parts := [][]flowbatch.Ownership{hb.Ownerships}
	for {
		var out []*outBatch
		fits := true
		for _, p := range parts {
			h := *hb
			h.Ownerships = p
			if len(parts) > 1 {
				h.Complete = false
			}
			ob := s.encodeOne(enc, &flowbatch.Batch{Header: s.header(), Heartbeat: &h}, 0)
			if ob == nil {
				return nil
			}
			if maxBytes > 0 && len(ob[0].body) > maxBytes && len(p) > 1 {
				fits = false
				break
			}
			ob[0].heartbeat = true
			out = append(out, ob...)
		}
		if fits {
			return out
		}
		var halves [][]flowbatch.Ownership
		for _, p := range parts {
			halves = append(halves, p[:len(p)/2], p[len(p)/2:])
		}
		parts = halves
	}
}

// validRecords keeps the records the collector can accept (addresses set, an end time), so
// one bad record never costs a whole batch. It filters in place, and copies nothing while
// every record is valid (records are large).
func validRecords(recs []flow.Record) []flow.Record {
	for i := range recs {
		if !validRecord(&recs[i]) {
			kept := recs[:i]
			for j := i + 1; j < len(recs); j++ {
				if validRecord(&recs[j]) {
					kept = append(kept, recs[j])
				}
			}
			return kept
		}
	}
	return recs
}

func validRecord(r *flow.Record) bool {
	return r.LocalAddr.IsValid() && r.RemoteAddr.IsValid() && !r.End.IsZero()
}

// buffers recycles the encoded batches the collector acknowledged: less garbage, fewer GC
// cycles, and so fewer write barriers while Write copies records.
var buffers sync.Pool

func (s *Shipper) buffer(size int) []byte {
	if b, ok := buffers.Get().(*[]byte); ok && cap(*b) >= size {
		return (*b)[:0]
	}
	return make([]byte, 0, size)
}

// recycle returns a delivered batch's bytes; nothing may hold them any more.
func recycle(b []byte) {
	b = b[:0]
	buffers.Put(&b)
}
