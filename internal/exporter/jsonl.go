package exporter

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
	"golang.org/x/sys/unix"
)

// JSONLines writes flow records as one JSON object a line (docs/flow-record.md), and summaries
// as lines of the form {"summary": {...}}. Output is buffered and flushed after every call.
type JSONLines struct {
	w   *bufio.Writer
	buf []byte
	enc flow.JSONEncoder
}

// NewJSONLines returns a sink writing to w. When w is a pipe, its buffer is raised to 1 MiB
// (as far as fs.pipe-max-size allows) so that a burst of records costs fewer wakeups.
func NewJSONLines(w io.Writer) *JSONLines {
	if f, ok := w.(*os.File); ok {
		_, _ = unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, 1<<20) // fails harmlessly on non-pipes
	}
	return &JSONLines{w: bufio.NewWriterSize(w, 64<<10)}
}

// Write writes records, one line each.
func (j *JSONLines) Write(recs []flow.Record) error {
	for i := range recs {
		j.buf = j.enc.Append(j.buf[:0], &recs[i])
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

// Heartbeat writes one line of the form {"heartbeat": {...}}.
func (j *JSONLines) Heartbeat(h flowbatch.Heartbeat) error {
	b, err := json.Marshal(struct {
		Heartbeat flowbatch.Heartbeat `json:"heartbeat"`
	}{h})
	if err != nil {
		return fmt.Errorf("encoding the heartbeat: %w", err)
	}
	if _, err := j.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing the heartbeat: %w", err)
	}
	return j.w.Flush()
}
