package flowbatch

import "github.com/flowscope/flowscope/internal/flow"

// RecordWriter builds a batch body from records added one at a time, so a caller's records
// go straight into their batch instead of being copied to wait for it. The bytes are those
// AppendBody gives for a Batch of the same header and records. One RecordWriter serves one
// goroutine (or callers holding one lock).
type RecordWriter struct {
	enc  *Encoder
	hdr  Header
	body []byte
	prev int64
	n    int
}

// NewRecordWriter returns a RecordWriter with no batch begun.
func NewRecordWriter() *RecordWriter { return &RecordWriter{enc: NewEncoder()} }

// Begin starts a batch body in dst (see BodySizeHint for its capacity), dropping any batch
// begun and not ended.
func (w *RecordWriter) Begin(dst []byte, h Header) {
	w.enc.reset()
	w.hdr, w.body, w.n = h, dst, 0
}

// Add appends r; the first record's end is the batch's base time.
func (w *RecordWriter) Add(r *flow.Record) {
	if w.n == 0 {
		w.prev = r.End.UnixNano()
		w.body = appendBatchHeader(w.body, &w.hdr, w.prev)
	}
	w.body, w.prev = w.enc.appendRecord(w.body, r, w.prev)
	w.n++
}

// Len is the number of records added since Begin.
func (w *RecordWriter) Len() int { return w.n }

// End appends the workload table and returns the body; the RecordWriter keeps nothing of it.
func (w *RecordWriter) End() ([]byte, error) {
	if w.n == 0 {
		w.body = appendBatchHeader(w.body, &w.hdr, 0)
	}
	body, err := w.enc.appendOrigins(w.body)
	w.body, w.n = nil, 0
	return body, err
}
