package identity

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// pathSource returns the path on the v2 hierarchy of the cgroup with the given id, errNotFound
// when there is none (removed already), or errRateLimited when it was not looked for.
type pathSource func(id uint64) (string, error)

var (
	errNotFound    = errors.New("no cgroup with this id")
	errRateLimited = errors.New("cgroup id not indexed and the tree was walked too recently")
)

// fileIDKernfs is the file handle type of kernfs (FILEID_KERNFS).
const fileIDKernfs = 0xfe

// rootID is the id of the v2 root cgroup (kernfs numbers its root node 1).
const rootID = 1

// handleResolver resolves ids with open_by_handle_at: kernfs file handles carry the 64-bit
// node id, which is the cgroup id, so one syscall opens the cgroup's directory and its
// /proc/self/fd link names the path. It needs CAP_DAC_READ_SEARCH.
type handleResolver struct {
	mounts   CgroupMounts
	procRoot string
	mountFD  int
	htype    int32
}

func newHandleResolver(cm CgroupMounts, procRoot string) (*handleResolver, error) {
	point := cm.V2.MountPoint
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, point, 0)
	if err != nil {
		return nil, fmt.Errorf("file handles on %s: %w", point, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(point, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", point, err)
	}
	if h.Type() != fileIDKernfs || len(h.Bytes()) != 8 || binary.LittleEndian.Uint64(h.Bytes()) != st.Ino {
		return nil, fmt.Errorf("file handles on %s (type %#x, %d bytes) do not carry the kernfs id", point, h.Type(), len(h.Bytes()))
	}
	fd, err := unix.Open(point, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", point, err)
	}
	hr := &handleResolver{mounts: cm, procRoot: procRoot, mountFD: fd, htype: h.Type()}
	if _, err := hr.lookup(binary.LittleEndian.Uint64(h.Bytes())); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("opening cgroups by handle: %w", err)
	}
	return hr, nil
}

func (h *handleResolver) lookup(id uint64) (string, error) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], id)
	fd, err := unix.OpenByHandleAt(h.mountFD, unix.NewFileHandle(h.htype, b[:]), unix.O_PATH|unix.O_CLOEXEC)
	if errors.Is(err, unix.ESTALE) || errors.Is(err, unix.ENOENT) {
		return "", errNotFound
	}
	if err != nil {
		return "", fmt.Errorf("opening cgroup %d by handle: %w", id, err)
	}
	defer unix.Close(fd)
	link, err := readlink(h.procRoot + "/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", fmt.Errorf("naming cgroup %d: %w", id, err)
	}
	p, ok := h.mounts.V2Path(strings.TrimSuffix(link, " (deleted)"))
	if !ok {
		return "", fmt.Errorf("cgroup %d is at %q, outside the mount %s", id, link, h.mounts.V2.MountPoint)
	}
	return p, nil
}

func (h *handleResolver) close() error { return unix.Close(h.mountFD) }

func readlink(p string) (string, error) {
	buf := make([]byte, 512)
	for {
		n, err := unix.Readlink(p, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		if len(buf) >= 64<<10 {
			return "", fmt.Errorf("readlink %s: name too long", p)
		}
		buf = make([]byte, 2*len(buf))
	}
}

// walkLookup resolves ids from an index of the v2 tree, walking the tree again on a miss at
// most once per RewalkInterval.
func (r *Resolver) walkLookup(id uint64) (string, error) {
	r.walkMu.Lock()
	defer r.walkMu.Unlock()
	if p, ok := r.walked[id]; ok {
		return p, nil
	}
	if r.mounts.V2 == nil {
		if id == rootID { // no v2 mount (cgroup v1 host): every socket is in the v2 root
			return "/", nil
		}
		return "", errNotFound
	}
	now := r.cfg.Now()
	if !r.lastWalk.IsZero() && now.Sub(r.lastWalk) < r.cfg.RewalkInterval {
		r.m.walksLimited.Inc()
		return "", errRateLimited
	}
	r.lastWalk = now
	r.m.walks.Inc()
	idx, truncated, err := walk(r.mounts, r.cfg.MaxWalk)
	if err != nil {
		return "", err
	}
	if truncated {
		r.m.walkTruncated.Inc()
	}
	r.walked = idx
	if p, ok := idx[id]; ok {
		return p, nil
	}
	return "", errNotFound
}

// walk indexes every cgroup directory under the v2 mount by inode number (the cgroup id on
// 64-bit kernels), up to max of them.
func walk(cm CgroupMounts, max int) (idx map[uint64]string, truncated bool, err error) {
	idx = make(map[uint64]string)
	root := cm.V2.MountPoint
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil // removed while walking
		}
		if !d.IsDir() {
			return nil
		}
		if len(idx) >= max {
			truncated = true
			return fs.SkipAll
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("no inode number for %s", p)
		}
		if cp, ok := cm.V2Path(p); ok {
			idx[st.Ino] = cp
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("walking the cgroup tree at %s: %w", root, err)
	}
	return idx, truncated, nil
}
