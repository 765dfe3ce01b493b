package exporter

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// namespaces finds the network namespaces of this host: every process's /proc/<pid>/ns/net and
// the bind mounts under /run/netns. It maps each namespace inode to a path that can be entered.
type namespaces struct {
	proc  string // /proc
	run   string // /run/netns
	self  uint32
	paths map[uint32]string
	pids  map[uint32][]uint32 // a few processes of each namespace (none for bind mounts only)
}

func newNamespaces() (*namespaces, error) {
	n := &namespaces{proc: "/proc", run: "/run/netns", paths: map[uint32]string{}}
	ino, err := nsInode("/proc/self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("reading this process's network namespace: %w", err)
	}
	n.self = ino
	return n, nil
}

// maxPidsPerNamespace bounds the processes remembered per namespace (to name its workload).
const maxPidsPerNamespace = 8

// scan rebuilds the inode → path map. It keeps one path per namespace.
func (n *namespaces) scan() {
	paths := map[uint32]string{n.self: ""}
	pids := map[uint32][]uint32{}
	if ents, err := os.ReadDir(n.run); err == nil {
		for _, e := range ents {
			p := filepath.Join(n.run, e.Name())
			if ino, err := nsInode(p); err == nil {
				if _, ok := paths[ino]; !ok {
					paths[ino] = p
				}
			}
		}
	}
	ents, _ := os.ReadDir(n.proc)
	for _, e := range ents {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		p := filepath.Join(n.proc, e.Name(), "ns", "net")
		link, err := os.Readlink(p)
		if err != nil {
			continue
		}
		ino, ok := parseNsLink(link)
		if !ok {
			continue
		}
		if _, seen := paths[ino]; !seen {
			paths[ino] = p
		}
		if len(pids[ino]) < maxPidsPerNamespace {
			pids[ino] = append(pids[ino], uint32(pid))
		}
	}
	n.paths, n.pids = paths, pids
}

// parseNsLink parses "net:[4026531840]".
func parseNsLink(s string) (uint32, bool) {
	s, ok := strings.CutPrefix(s, "net:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 32)
	return uint32(v), err == nil
}

func nsInode(path string) (uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return uint32(st.Ino), nil
}

// inNamespace runs fn on a locked OS thread switched into the network namespace at path ("" is
// the exporter's own). If the thread cannot be switched back it is not returned to the Go
// runtime: it exits with its goroutine.
func inNamespace(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("opening this thread's network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("opening network namespace %s: %w", path, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, syscall.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering network namespace %s: %w", path, err)
			return
		}
		ferr := fn()
		if unix.Setns(orig, syscall.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}
