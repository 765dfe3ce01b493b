package exporter

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/flowscope/flowscope/internal/flow"
)

// JSONLines writes flow records as one JSON object a line (docs/flow-record.md), and summaries
// as lines of the form {"summary": {...}}. Output is buffered and flushed after every call.
type JSONLines struct {
	w   *bufio.Writer
	buf []byte
}

// NewJSONLines returns a sink writing to w.
func NewJSONLines(w io.Writer) *JSONLines {
	return &JSONLines{w: bufio.NewWriterSize(w, 256<<10)}
}

// Write writes records, one line each.
func (j *JSONLines) Write(recs []flow.Record) error {
	for i := range recs {
		j.buf = flow.AppendJSON(j.buf[:0], &recs[i])
		j.buf = append(j.buf, '\n')
		if _, err := j.w.Write(j.buf); err != nil {
			return fmt.Errorf("writing flow records: %w", err)
		}
	}
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("writing flow records: %w", err)
	}
	return nil
}

// Summary writes one summary line.
func (j *JSONLines) Summary(s Summary) error {
	b, err := json.Marshal(struct {
		Summary SummaryJSON `json:"summary"`
	}{s.JSON()})
	if err != nil {
		return fmt.Errorf("encoding the summary: %w", err)
	}
	if _, err := j.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing the summary: %w", err)
	}
	return j.w.Flush()
}
