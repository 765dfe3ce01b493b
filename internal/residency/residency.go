// Package residency trims the process's resident set to the pages it keeps using. flowscope is
// one binary for every role: an exporter carries the collector's DuckDB and Kubernetes code,
// whose start-up (C++ static constructors, package initialisers) faults in tens of MB of the
// executable that the exporter never runs again. Those pages are clean copies of the file, so
// dropping them from the process's page tables loses nothing: a page that is used again comes
// back from the page cache on its next access.
package residency

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mapping is one mapping of the executable that ReleaseExecutable considered.
type Mapping struct {
	Start, End uint64
	Perms      string
	RSSBytes   uint64
	AnonBytes  uint64 // copy-on-write pages: such a mapping is never released
}

// ReleaseExecutable drops the resident pages of the executable's read-only mappings that hold
// no private (copy-on-write) page, and returns how many bytes were resident in them.
func ReleaseExecutable() (uint64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("finding the executable: %w", err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("reading the process's mappings: %w", err)
	}
	var released uint64
	for _, m := range parseSmaps(smaps, exe) {
		if strings.Contains(m.Perms, "w") || m.AnonBytes != 0 || m.RSSBytes == 0 {
			continue
		}
		// Without read-ahead a page that is used again comes back alone, not with its neighbours.
		if err := madvise(m, unix.MADV_RANDOM); err != nil {
			return released, err
		}
		if err := madvise(m, unix.MADV_DONTNEED); err != nil {
			return released, err
		}
		released += m.RSSBytes
	}
	// Drop the file's cached pages that no process maps any more, so that pages come back
	// one at a time instead of as the large folios the file was cached in.
	if f, err := os.Open(exe); err == nil {
		_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
	}
	return released, nil
}

// parseSmaps returns the mappings of path in a /proc/PID/smaps text.
func parseSmaps(b []byte, path string) []Mapping {
	var out []Mapping
	var cur *Mapping
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if r, ok := strings.CutSuffix(f[0], ":"); ok {
			if cur != nil && len(f) >= 2 && (r == "Rss" || r == "Anonymous") {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				if r == "Rss" {
					cur.RSSBytes = kb * 1024
				} else {
					cur.AnonBytes = kb * 1024
				}
			}
			continue
		}
		cur = nil
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok || len(f) < 6 || strings.Join(f[5:], " ") != path {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, Mapping{Start: start, End: end, Perms: f[1]})
		cur = &out[len(out)-1]
	}
	return out
}

func madvise(m Mapping, advice int) error {
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.Start), uintptr(m.End-m.Start), uintptr(advice)); errno != 0 {
		return fmt.Errorf("madvise %x-%x: %w", m.Start, m.End, errno)
	}
	return nil
}
