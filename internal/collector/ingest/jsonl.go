package ingest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// JSONL is a consumer that prints what the collector ingests, one JSON object a line:
// {"kind":"flow"|"aggregate"|"heartbeat"|"counters", "offset", "exporter_id", "boot_id",
// "sequence", and "flow"|"aggregate"|"heartbeat"|"counters"}. Lines of one spool offset may
// repeat after a crash (at-least-once); readers de-duplicate by offset.
type JSONL struct {
	mu sync.Mutex
	w  *bufio.Writer
}

// NewJSONL returns a JSONL consumer writing to w.
func NewJSONL(w io.Writer) *JSONL { return &JSONL{w: bufio.NewWriterSize(w, 1<<16)} }

// Name implements Consumer.
func (j *JSONL) Name() string { return "jsonl" }

// JSONLine is one line of the jsonl output.
type JSONLine struct {
	Kind       string               `json:"kind"`
	Offset     uint64               `json:"offset"`
	ExporterID string               `json:"exporter_id"`
	BootID     string               `json:"boot_id"`
	Sequence   uint64               `json:"sequence"`
	Flow       *flow.Record         `json:"flow,omitempty"`
	Aggregate  *flowbatch.Aggregate `json:"aggregate,omitempty"`
	Heartbeat  *flowbatch.Heartbeat `json:"heartbeat,omitempty"`
	Counters   []flowbatch.Counter  `json:"counters,omitempty"`
}

// Consume implements Consumer.
func (j *JSONL) Consume(_ context.Context, e Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	b := e.Batch
	base := JSONLine{Offset: e.Offset, ExporterID: b.ExporterID, BootID: b.BootID, Sequence: b.Sequence}
	enc := json.NewEncoder(j.w)
	emit := func(l JSONLine) error {
		if err := enc.Encode(l); err != nil {
			return fmt.Errorf("writing jsonl: %w", err)
		}
		return nil
	}
	for i := range b.Records {
		l := base
		l.Kind, l.Flow = "flow", &b.Records[i]
		if err := emit(l); err != nil {
			return err
		}
	}
	for i := range b.Aggregates {
		l := base
		l.Kind, l.Aggregate = "aggregate", &b.Aggregates[i]
		if err := emit(l); err != nil {
			return err
		}
	}
	if b.Heartbeat != nil {
		l := base
		l.Kind, l.Heartbeat = "heartbeat", b.Heartbeat
		if err := emit(l); err != nil {
			return err
		}
	}
	if len(b.Counters) > 0 {
		l := base
		l.Kind, l.Counters = "counters", b.Counters
		if err := emit(l); err != nil {
			return err
		}
	}
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("writing jsonl: %w", err)
	}
	return nil
}
