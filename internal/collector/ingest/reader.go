package ingest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
)

// spoolReader reads durable entries in order from a starting offset.
type spoolReader struct {
	s    *spool
	next uint64
	f    *os.File
	r    *bufio.Reader
	end  uint64 // first offset past the open segment (0: unknown, it is the last one)

	skipped uint64 // entries removed before this reader got to them
}

func (s *spool) reader(from uint64) *spoolReader { return &spoolReader{s: s, next: from} }

func (rd *spoolReader) close() {
	if rd.f != nil {
		rd.f.Close()
		rd.f = nil
	}
}

// next returns the entry at rd.next, waiting until it is durable or ctx ends.
func (rd *spoolReader) read(ctx context.Context) (spoolEntry, error) {
	for {
		durable, wait := rd.s.durable()
		if rd.next < durable {
			break
		}
		select {
		case <-ctx.Done():
			return spoolEntry{}, ctx.Err()
		case <-wait:
		}
	}
	if rd.f == nil || (rd.end != 0 && rd.next >= rd.end) {
		if err := rd.open(); err != nil {
			return spoolEntry{}, err
		}
	}
	e, _, err := readEntry(rd.r)
	if err == io.EOF && rd.end == 0 {
		// The segment was rotated after we opened it as the last one: move on.
		rd.close()
		return rd.read(ctx)
	}
	if err != nil {
		return spoolEntry{}, fmt.Errorf("reading spool at offset %d: %w", rd.next, err)
	}
	e.Offset = rd.next
	rd.next++
	return e, nil
}

// open positions the reader at rd.next: it opens the segment holding it and skips entries.
func (rd *spoolReader) open() error {
	rd.close()
	rd.s.mu.Lock()
	starts := append([]uint64(nil), rd.s.starts...)
	rd.s.mu.Unlock()
	i := sort.Search(len(starts), func(i int) bool { return starts[i] > rd.next }) - 1
	if i < 0 { // removed by retention (spool over its bound): continue with what is left
		rd.skipped += starts[0] - rd.next
		rd.next, i = starts[0], 0
	}
	f, err := os.Open(rd.s.segPath(starts[i]))
	if err != nil {
		return fmt.Errorf("opening spool segment: %w", err)
	}
	rd.f, rd.r, rd.end = f, bufio.NewReaderSize(f, 1<<20), 0
	if i+1 < len(starts) {
		rd.end = starts[i+1]
	}
	for off := starts[i]; off < rd.next; off++ {
		if _, _, err := readEntry(rd.r); err != nil {
			return fmt.Errorf("skipping to spool offset %d: %w", rd.next, err)
		}
	}
	return nil
}
