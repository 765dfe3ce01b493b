package identity

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SocketOwners finds the process that holds a socket, by the socket's inode: every
// /proc/PID/fd/N that links to "socket:[INODE]". A scan reads every descriptor of every
// process, so results are cached: the first miss of an inode rescans at most once a second,
// a repeated miss at most once per Rescan. A socket held by
// several processes (a listener shared by pre-forked workers) has no single owner and is not
// named: the answer must be reliable or absent.
type SocketOwners struct {
	ProcRoot string        // default /proc
	Rescan   time.Duration // least time between two scans for an inode missed before (default 10 s)
	MaxFDs   int           // descriptors read by one scan at most (default 1,000,000)
	Now      func() time.Time

	mu       sync.Mutex
	owners   map[uint64]owner
	missed   map[uint64]bool // inodes a scan did not find
	lastScan time.Time
}

type owner struct {
	pid  uint32
	comm string
}

// Owner returns the single process holding the socket with inode ino.
func (s *SocketOwners) Owner(ino uint64) (pid uint32, comm string, ok bool) {
	if ino == 0 {
		return 0, "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, found := s.owners[ino]; found {
		return o.pid, o.comm, o.pid != 0
	}
	now := s.now()
	wait := s.rescan()
	if !s.missed[ino] {
		wait = time.Second
	}
	if !s.lastScan.IsZero() && now.Sub(s.lastScan) < wait {
		return 0, "", false
	}
	s.scan()
	s.lastScan = now
	o, found := s.owners[ino]
	if !found {
		if len(s.missed) >= 1<<16 {
			clear(s.missed)
		}
		if s.missed == nil {
			s.missed = map[uint64]bool{}
		}
		s.missed[ino] = true
	}
	return o.pid, o.comm, o.pid != 0
}

func (s *SocketOwners) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *SocketOwners) rescan() time.Duration {
	if s.Rescan > 0 {
		return s.Rescan
	}
	return 10 * time.Second
}

// scan rebuilds the inode → owner map; an inode seen in two processes maps to no owner.
func (s *SocketOwners) scan() {
	root := s.ProcRoot
	if root == "" {
		root = "/proc"
	}
	limit := s.MaxFDs
	if limit <= 0 {
		limit = 1_000_000
	}
	owners := map[uint64]owner{}
	procs, _ := os.ReadDir(root)
	for _, p := range procs {
		pid, err := strconv.ParseUint(p.Name(), 10, 32)
		if err != nil {
			continue
		}
		dir := filepath.Join(root, p.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		var comm string
		for _, fd := range fds {
			if limit--; limit < 0 {
				s.owners = owners
				return
			}
			link, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
			if err != nil {
				continue
			}
			if prev, seen := owners[ino]; seen && prev.pid != uint32(pid) {
				owners[ino] = owner{} // shared: no single owner
				continue
			}
			if comm == "" {
				b, _ := os.ReadFile(filepath.Join(root, p.Name(), "comm"))
				comm = strings.TrimSpace(string(b))
			}
			owners[ino] = owner{pid: uint32(pid), comm: comm}
		}
	}
	s.owners = owners
}
