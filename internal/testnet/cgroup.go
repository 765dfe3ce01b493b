package testnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/flowscope/flowscope/internal/exporter/identity"
)

// Cgroup is a cgroup v2 directory created for a test, under a parent of its own
// (<v2 mount>/fst-<pid>-<random>/).
//
// A socket keeps the cgroup it was created in (the kernel sets sk_cgrp_data when the socket is
// created, and an accepted socket inherits its listener's), so one test process can create a
// listener inside cgroup A's Do and a client socket inside cgroup B's Do and then use both
// from anywhere: the exporter sees two workloads.
type Cgroup struct {
	Dir  string // absolute directory of the cgroup
	Path string // its path inside the v2 hierarchy, as the kernel and /proc/PID/cgroup name it ("/fst-.../NAME")

	id     uint64
	root   string // the v2 mount point
	parent string // the unique parent directory, removed with the cgroup
}

// moveMu serializes Cgroup.Do: the whole process moves, so only one Do may run at a time.
var moveMu sync.Mutex

// NewCgroup creates a cgroup named name (a relative path; it may have several components) and
// removes it when the test ends.
func NewCgroup(t testing.TB, name string) *Cgroup {
	t.Helper()
	v, err := CreateCgroup(name)
	return closeAtEnd(t, v, err)
}

// CreateCgroup creates a cgroup named name (a relative path; it may have several components)
// under a new unique parent on the cgroup v2 hierarchy; the caller must Close it.
func CreateCgroup(name string) (*Cgroup, error) {
	clean := filepath.Clean(name)
	if name == "" || filepath.IsAbs(clean) || clean == "." || strings.HasPrefix(clean, "..") {
		return nil, fmt.Errorf("cgroup name %q: want a relative path inside the test's parent", name)
	}
	root, err := V2Mount()
	if err != nil {
		return nil, err
	}
	parent := filepath.Join(root, uniqueName("fst"))
	if err := os.Mkdir(parent, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup parent: %w", err)
	}
	c := &Cgroup{Dir: filepath.Join(parent, clean), root: root, parent: parent}
	c.Path = strings.TrimPrefix(c.Dir, root)
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, errors.Join(fmt.Errorf("creating cgroup: %w", err), c.Close())
	}
	if c.id, err = inode(c.Dir); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// ID is the cgroup's id: the inode number of its directory, which on 64-bit kernels is the
// kernfs node id that BPF reads as cgroup->kn->id and bpf_get_current_cgroup_id returns.
func (c *Cgroup) ID() uint64 { return c.id }

// Do moves the whole process (every thread) into the cgroup, runs fn and moves the process
// back to the cgroup it was in. Calls are serialized. Anything the process does meanwhile on
// other goroutines also happens inside the cgroup.
func (c *Cgroup) Do(fn func() error) (err error) {
	moveMu.Lock()
	defer moveMu.Unlock()
	orig, err := SelfV2Path()
	if err != nil {
		return err
	}
	if err := movePid(c.Dir, os.Getpid()); err != nil {
		return err
	}
	defer func() {
		if merr := movePid(filepath.Join(c.root, orig), os.Getpid()); merr != nil && err == nil {
			err = merr
		}
	}()
	return fn()
}

// Close removes the cgroup and its parents up to the unique parent. Processes still inside
// (children started in Do) are moved to the root cgroup first.
func (c *Cgroup) Close() error {
	var errs []error
	for dir := c.Dir; strings.HasPrefix(dir, c.parent); dir = filepath.Dir(dir) {
		if err := evacuate(dir, c.root); err != nil {
			errs = append(errs, err)
		}
		if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

// evacuate moves every process in dir to the cgroup at root.
func evacuate(dir, root string) error {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil // already gone
	}
	var errs []error
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if err := movePid(root, pid); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func movePid(dir string, pid int) error {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("moving process %d to cgroup %s: %w", pid, dir, err)
	}
	return nil
}

func inode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Ino, nil
}

// V2Mount returns where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup on unified hosts,
// /sys/fs/cgroup/unified on hybrid ones), from /proc/self/mountinfo.
func V2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("reading mounts: %w", err)
	}
	defer f.Close()
	mounts, err := identity.ParseMountinfo(f)
	if err != nil {
		return "", err
	}
	cm := identity.FindCgroupMounts(mounts)
	if cm.V2 == nil || cm.V2.Root != "/" {
		return "", errors.New("no cgroup2 file system with root / is mounted")
	}
	return cm.V2.MountPoint, nil
}

// SelfV2Path returns this process's cgroup v2 path (the "0::" line of /proc/self/cgroup).
func SelfV2Path() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("reading own cgroup: %w", err)
	}
	for _, l := range identity.ParseProcCgroup(string(data)) {
		if l.Hierarchy == 0 && len(l.Controllers) == 0 {
			return l.Path, nil
		}
	}
	return "", errors.New("this process has no cgroup v2 membership (no 0:: line in /proc/self/cgroup)")
}

// KubeletPodPath returns the cgroup path (relative, systemd driver) kubelet gives a container:
// kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid with _>.slice/<runtime>-<id>.scope.
// qos is "burstable", "besteffort" or "" (guaranteed: no QoS slice); runtime is the scope
// prefix ("cri-containerd", "crio", "docker"); an empty containerID gives the pod's slice.
func KubeletPodPath(qos, podUID, runtime, containerID string) string {
	uid := strings.ReplaceAll(podUID, "-", "_")
	parts := []string{"kubepods.slice"}
	pod := "kubepods-pod" + uid + ".slice"
	if qos != "" {
		parts = append(parts, "kubepods-"+qos+".slice")
		pod = "kubepods-" + qos + "-pod" + uid + ".slice"
	}
	parts = append(parts, pod)
	if containerID != "" {
		parts = append(parts, runtime+"-"+containerID+".scope")
	}
	return strings.Join(parts, "/")
}
