package ingest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The spool is the collector's durable hand-off: an append-only log of accepted batches in
// segment files named by the offset of their first entry. An entry is
//
//	u32 length | u32 crc32c(body) | body
//	body = u16 len | exporter id | u16 len | boot id | u64 sequence | encoded batch
//
// Appends are group-committed: one fsync covers every entry written since the previous one,
// and nothing is acknowledged before its fsync returns. A torn tail (a crash mid-write) is cut
// off when the spool is opened.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	segmentSuffix  = ".seg"
	entryHeaderLen = 8
	maxEntryLen    = 64 << 20
)

// Key identifies a batch for de-duplication.
type Key struct {
	Exporter string
	Boot     string
	Seq      uint64
}

// spoolEntry is one stored batch.
type spoolEntry struct {
	Offset uint64
	Key    Key
	Data   []byte
}

type spool struct {
	dir        string
	segmentMax int64

	syncMu  sync.Mutex // one fsync at a time; writers keep appending meanwhile
	mu      sync.Mutex // guards everything below
	f       *os.File
	w       *bufio.Writer
	size    int64
	next    uint64   // offset of the next entry
	starts  []uint64 // first offsets of the segments, ascending
	synced  uint64   // entries below this offset are durable
	notify  chan struct{}
	syncErr error
}

// openSpool opens (or creates) the spool in dir, cutting a torn tail, and calls visit for every
// stored entry in order (the caller rebuilds its de-duplication state from them).
func openSpool(dir string, segmentMax int64, visit func(spoolEntry)) (*spool, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating spool directory: %w", err)
	}
	s := &spool{dir: dir, segmentMax: segmentMax, notify: make(chan struct{})}
	starts, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	s.starts = starts
	if len(starts) == 0 {
		s.starts = []uint64{0}
	}
	for i, start := range s.starts {
		last := i == len(s.starts)-1
		next, size, err := scanSegment(s.segPath(start), start, last, visit)
		if err != nil {
			return nil, err
		}
		s.next, s.size = next, size
	}
	s.synced = s.next
	f, err := os.OpenFile(s.segPath(s.starts[len(s.starts)-1]), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening spool segment: %w", err)
	}
	s.f, s.w = f, bufio.NewWriterSize(f, 1<<20)
	return s, syncDir(dir)
}

func (s *spool) segPath(start uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", start, segmentSuffix))
}

func listSegments(dir string) ([]uint64, error) {
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing spool: %w", err)
	}
	var starts []uint64
	for _, n := range names {
		base, ok := strings.CutSuffix(n.Name(), segmentSuffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(base, 10, 64)
		if err != nil {
			continue
		}
		starts = append(starts, v)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	return starts, nil
}

// scanSegment reads a segment, visiting its entries; a damaged tail of the last segment is
// truncated, in another segment it is an error.
func scanSegment(path string, start uint64, last bool, visit func(spoolEntry)) (next uint64, size int64, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return 0, 0, fmt.Errorf("opening spool segment: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	next = start
	var good int64
	for {
		e, n, rerr := readEntry(r)
		if rerr == io.EOF {
			return next, good, nil
		}
		if rerr != nil {
			if !last {
				return 0, 0, fmt.Errorf("spool segment %s damaged at byte %d: %w", path, good, rerr)
			}
			if err := f.Truncate(good); err != nil {
				return 0, 0, fmt.Errorf("cutting torn spool tail: %w", err)
			}
			return next, good, f.Sync()
		}
		e.Offset = next
		if visit != nil {
			visit(e)
		}
		next++
		good += n
	}
}

var errTorn = errors.New("torn or corrupt entry")

func readEntry(r *bufio.Reader) (spoolEntry, int64, error) {
	var hdr [entryHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF {
			return spoolEntry{}, 0, io.EOF
		}
		return spoolEntry{}, 0, errTorn
	}
	n := binary.LittleEndian.Uint32(hdr[:4])
	if n > maxEntryLen || n < 12 {
		return spoolEntry{}, 0, errTorn
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return spoolEntry{}, 0, errTorn
	}
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
		return spoolEntry{}, 0, errTorn
	}
	e, ok := parseBody(body)
	if !ok {
		return spoolEntry{}, 0, errTorn
	}
	return e, int64(entryHeaderLen + n), nil
}

func parseBody(b []byte) (spoolEntry, bool) {
	var e spoolEntry
	str := func() (string, bool) {
		if len(b) < 2 {
			return "", false
		}
		n := int(binary.LittleEndian.Uint16(b))
		if len(b) < 2+n {
			return "", false
		}
		s := string(b[2 : 2+n])
		b = b[2+n:]
		return s, true
	}
	var ok bool
	if e.Key.Exporter, ok = str(); !ok {
		return e, false
	}
	if e.Key.Boot, ok = str(); !ok || len(b) < 8 {
		return e, false
	}
	e.Key.Seq = binary.LittleEndian.Uint64(b)
	e.Data = b[8:]
	return e, true
}

func appendBody(dst []byte, k Key, data []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(k.Exporter)))
	dst = append(dst, k.Exporter...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(k.Boot)))
	dst = append(dst, k.Boot...)
	dst = binary.LittleEndian.AppendUint64(dst, k.Seq)
	return append(dst, data...)
}

// write buffers one entry and returns its offset; it is durable once sync(offset) returns.
func (s *spool) write(k Key, data []byte) (uint64, error) {
	// The body is written as its key prefix and the batch, never copied into one buffer.
	var room [128]byte
	pre := appendBody(room[:0], k, nil)
	var hdr [entryHeaderLen]byte
	binary.LittleEndian.PutUint32(hdr[:4], uint32(len(pre)+len(data)))
	binary.LittleEndian.PutUint32(hdr[4:], crc32.Update(crc32.Checksum(pre, castagnoli), castagnoli, data))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.syncErr != nil {
		return 0, s.syncErr
	}
	if s.size >= s.segmentMax {
		if err := s.rotate(); err != nil {
			return 0, err
		}
	}
	if _, err := s.w.Write(hdr[:]); err != nil {
		return 0, s.fail(err)
	}
	if _, err := s.w.Write(pre); err != nil {
		return 0, s.fail(err)
	}
	if _, err := s.w.Write(data); err != nil {
		return 0, s.fail(err)
	}
	s.size += int64(entryHeaderLen + len(pre) + len(data))
	off := s.next
	s.next++
	return off, nil
}

// fail poisons the spool after a write error: a partial entry may be buffered, so nothing
// more may be acknowledged until a restart cuts the tail.
func (s *spool) fail(err error) error {
	s.syncErr = fmt.Errorf("writing spool: %w", err)
	return s.syncErr
}

func (s *spool) rotate() error {
	if err := s.flushSyncLocked(); err != nil {
		return err
	}
	if err := s.f.Close(); err != nil {
		return s.fail(err)
	}
	f, err := os.OpenFile(s.segPath(s.next), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return s.fail(err)
	}
	s.f, s.size = f, 0
	s.w.Reset(f)
	s.starts = append(s.starts, s.next)
	if err := syncDir(s.dir); err != nil {
		return s.fail(err)
	}
	return nil
}

func (s *spool) flushSyncLocked() error {
	if err := s.w.Flush(); err != nil {
		return s.fail(err)
	}
	if err := s.f.Sync(); err != nil {
		return s.fail(err)
	}
	if s.synced != s.next {
		s.synced = s.next
		close(s.notify)
		s.notify = make(chan struct{})
	}
	return nil
}

// syncTo makes every entry below end durable. Concurrent callers share one fsync: entries
// written while an fsync runs are covered by the next one, which the first of their callers
// to get the sync lock issues for all of them.
func (s *spool) syncTo(end uint64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	if s.synced >= end || s.syncErr != nil {
		defer s.mu.Unlock()
		return s.syncErr
	}
	if err := s.w.Flush(); err != nil {
		defer s.mu.Unlock()
		return s.fail(err)
	}
	f, target := s.f, s.next
	s.mu.Unlock()
	err := f.Sync()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil && s.f == f { // (a rotation closes f after syncing it itself)
		return s.fail(err)
	}
	if target > s.synced {
		s.synced = target
		close(s.notify)
		s.notify = make(chan struct{})
	}
	return s.syncErr
}

// durable returns the offset below which entries are durable and a channel closed when it grows.
func (s *spool) durable() (uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced, s.notify
}

func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.flushSyncLocked()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing spool directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing spool directory: %w", err)
	}
	return nil
}
