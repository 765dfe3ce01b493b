package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flowscope/flowscope/internal/flowbatch"
)

// Entry is one accepted batch as downstream consumers see it.
type Entry struct {
	Offset uint64           // position in the spool: strictly increasing, never reused
	Batch  *flowbatch.Batch // validated and converted
}

// Consumer is a downstream component (attribution, store, the jsonl printer) fed by the
// ingest. Consume is called from one goroutine per consumer, with entries in spool order
// (acceptance order), at least once each: after a crash the entries since the consumer's last
// committed offset come again, so a consumer that must not double-count keeps the highest
// Offset it has made durable and skips entries at or below it. An error from Consume is
// retried (with backoff) on the same entry; Consume must return when ctx ends. A consumer's
// offset is committed after Consume returns nil, at least once a second and whenever it
// catches up.
type Consumer interface {
	Name() string // stable, [a-z0-9-]: names its committed offset file
	Consume(ctx context.Context, e Entry) error
}

func (in *Ingest) offsetPath(name string) string {
	return filepath.Join(in.cfg.SpoolDir, "consumers", name+".offset")
}

func (in *Ingest) runConsumer(ctx context.Context, c Consumer) error {
	name := c.Name()
	next, err := readOffset(in.offsetPath(name))
	if err != nil {
		return err
	}
	var pos, committedPos atomic.Uint64
	pos.Store(next)
	committedPos.Store(next)
	in.mu.Lock()
	if in.committed == nil {
		in.committed = map[string]*atomic.Uint64{}
	}
	in.committed[name] = &committedPos
	in.mu.Unlock()
	in.m.mu.Lock()
	in.m.depth[name] = func() float64 { d, _ := in.spool.durable(); return float64(d - min(d, pos.Load())) }
	in.m.mu.Unlock()
	rd := in.spool.reader(next)
	defer rd.close()
	lastCommit, committed := time.Now(), next
	for {
		e, err := rd.read(ctx)
		if rd.skipped > 0 {
			in.m.skipped.Add(float64(rd.skipped))
			in.logs.error("skipped-"+name, "consumer fell behind a full spool; batches skipped", "consumer", name, "skipped", rd.skipped)
			rd.skipped = 0
		}
		if err != nil {
			if ctx.Err() != nil {
				return writeOffset(in.offsetPath(name), pos.Load())
			}
			return fmt.Errorf("consumer %s: %w", name, err)
		}
		entry, err := toEntry(e)
		if err != nil { // cannot happen for what Scan accepted (fuzzed); never block the pipeline on it
			in.m.undecodable.Inc()
			in.logs.error("undecodable", "stored batch does not decode; skipped", "consumer", name, "offset", e.Offset, "err", err)
		} else if err := in.deliver(ctx, c, entry); err != nil {
			return writeOffset(in.offsetPath(name), pos.Load())
		}
		pos.Store(e.Offset + 1)
		in.m.consumed.WithLabelValues(name).Inc()
		durable, _ := in.spool.durable()
		if caughtUp := pos.Load() >= durable; caughtUp || time.Since(lastCommit) > time.Second {
			if pos.Load() != committed {
				if err := writeOffset(in.offsetPath(name), pos.Load()); err != nil {
					return err
				}
				lastCommit, committed = time.Now(), pos.Load()
				committedPos.Store(committed)
			}
		}
	}
}

// deliver calls Consume until it succeeds or ctx ends.
func (in *Ingest) deliver(ctx context.Context, c Consumer, e Entry) error {
	backoff := 50 * time.Millisecond
	for {
		err := c.Consume(ctx, e)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		in.logs.error("consumer-"+c.Name(), "consumer failed; retrying the same batch", "consumer", c.Name(), "offset", e.Offset, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func toEntry(e spoolEntry) (Entry, error) {
	b, err := flowbatch.Unmarshal(e.Data) // validated by Scan when it was accepted
	if err != nil {
		return Entry{}, err
	}
	return Entry{Offset: e.Offset, Batch: b}, nil
}

func readOffset(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading consumer offset: %w", err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("consumer offset file %s: %w", path, err)
	}
	return v, nil
}

// writeOffset replaces the offset file atomically and durably.
func writeOffset(path string, off uint64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("writing consumer offset: %w", err)
	}
	err := writeFileAtomic(path, func(w io.Writer) error {
		_, err := io.WriteString(w, strconv.FormatUint(off, 10)+"\n")
		return err
	})
	if err != nil {
		return fmt.Errorf("writing consumer offset: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with what write produces: a temporary file, fsync'd, renamed
// over path, and the directory fsync'd, so a crash leaves the old or the new file whole.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	return err
}
