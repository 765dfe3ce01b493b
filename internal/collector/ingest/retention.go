package ingest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Retention: a segment is removed once every consumer has committed past it, or — when the
// spool exceeds SpoolMaxBytes — the oldest segments go even if unconsumed (counted). Before
// any removal the de-duplication state is written to a snapshot (atomically), because it can
// no longer be rebuilt from the removed segments.

const snapshotName = "dedupe.snapshot"

func (in *Ingest) runRetention(ctx context.Context) error {
	t := time.NewTicker(in.cfg.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := in.retain(); err != nil {
				in.logs.error("retention", "spool retention failed", "err", err)
			}
		}
	}
}

// retain removes what may be removed; it is called from one goroutine.
func (in *Ingest) retain() error {
	consumed := in.minCommitted()
	s := in.spool
	s.mu.Lock()
	starts := append([]uint64(nil), s.starts...)
	s.mu.Unlock()
	sizes := make([]int64, len(starts))
	var total int64
	for i, st := range starts {
		if fi, err := os.Stat(s.segPath(st)); err == nil {
			sizes[i] = fi.Size()
			total += fi.Size()
		}
	}
	n := 0 // segments to remove, oldest first; never the last (active) one
	for n < len(starts)-1 && (starts[n+1] <= consumed || total > in.cfg.SpoolMaxBytes) {
		if starts[n+1] > consumed {
			in.m.spoolDropped.Add(float64(starts[n+1] - max(starts[n], consumed)))
		}
		total -= sizes[n]
		n++
	}
	if n == 0 {
		return nil
	}
	if err := in.writeSnapshot(); err != nil {
		return err
	}
	s.mu.Lock()
	s.starts = s.starts[n:]
	s.mu.Unlock()
	for _, st := range starts[:n] {
		if err := os.Remove(s.segPath(st)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing spool segment: %w", err)
		}
	}
	return syncDir(s.dir)
}

// minCommitted is the lowest offset a consumer still needs (everything, without consumers).
func (in *Ingest) minCommitted() uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	low := uint64(math.MaxUint64)
	for _, p := range in.committed {
		low = min(low, p.Load())
	}
	if low == math.MaxUint64 {
		low, _ = in.spool.durable()
	}
	return low
}

func (in *Ingest) writeSnapshot() error {
	if err := writeFileAtomic(filepath.Join(in.cfg.SpoolDir, snapshotName), in.dedupe.save); err != nil {
		return fmt.Errorf("writing de-duplication snapshot: %w", err)
	}
	return nil
}

func (in *Ingest) loadSnapshot() error {
	f, err := os.Open(filepath.Join(in.cfg.SpoolDir, snapshotName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading de-duplication snapshot: %w", err)
	}
	defer f.Close()
	if err := in.dedupe.load(bufio.NewReader(f)); err != nil {
		return fmt.Errorf("reading de-duplication snapshot: %w", err)
	}
	return nil
}

const snapshotMagic = "FSDEDUP1"

// save writes every (exporter, boot) state; bitmap words are coded 0 (all clear),
// 1 (all set) or 2 + the word.
func (d *dedupe) save(w io.Writer) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	buf := append([]byte(snapshotMagic), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(buf[len(snapshotMagic):], uint32(len(d.boots)))
	for e := d.lru.Back(); e != nil; e = e.Prev() { // oldest first, so loading keeps the order
		b := e.Value.(bootKey)
		s := d.boots[b]
		buf = appendStr(buf, b.exporter)
		buf = appendStr(buf, b.boot)
		buf = binary.LittleEndian.AppendUint64(buf, s.min)
		buf = binary.LittleEndian.AppendUint64(buf, s.max)
		buf = binary.LittleEndian.AppendUint64(buf, s.count)
		for _, word := range s.bits {
			switch word {
			case 0:
				buf = append(buf, 0)
			case math.MaxUint64:
				buf = append(buf, 1)
			default:
				buf = binary.LittleEndian.AppendUint64(append(buf, 2), word)
			}
		}
		if len(buf) > 1<<20 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	_, err := w.Write(buf)
	return err
}

func appendStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// load reads a snapshot written by save.
func (d *dedupe) load(r *bufio.Reader) error {
	magic := make([]byte, len(snapshotMagic)+4)
	if _, err := io.ReadFull(r, magic); err != nil || string(magic[:len(snapshotMagic)]) != snapshotMagic {
		return errors.New("not a de-duplication snapshot")
	}
	n := binary.LittleEndian.Uint32(magic[len(snapshotMagic):])
	d.mu.Lock()
	defer d.mu.Unlock()
	for range n {
		exp, err1 := readStr(r)
		boot, err2 := readStr(r)
		var nums [24]byte
		_, err3 := io.ReadFull(r, nums[:])
		if err := errors.Join(err1, err2, err3); err != nil {
			return err
		}
		s := d.state(bootKey{exp, boot})
		s.min = binary.LittleEndian.Uint64(nums[0:])
		s.max = binary.LittleEndian.Uint64(nums[8:])
		s.count = binary.LittleEndian.Uint64(nums[16:])
		for i := range s.bits {
			tag, err := r.ReadByte()
			if err != nil {
				return err
			}
			switch tag {
			case 0:
				s.bits[i] = 0
			case 1:
				s.bits[i] = math.MaxUint64
			case 2:
				var w [8]byte
				if _, err := io.ReadFull(r, w[:]); err != nil {
					return err
				}
				s.bits[i] = binary.LittleEndian.Uint64(w[:])
			default:
				return errors.New("corrupt snapshot")
			}
		}
	}
	return nil
}

func readStr(r *bufio.Reader) (string, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return "", err
	}
	b := make([]byte, binary.LittleEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}
