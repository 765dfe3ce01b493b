package identity

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Mount is one line of /proc/PID/mountinfo.
type Mount struct {
	ID, ParentID int
	Root         string   // the directory of the file system that is mounted here ("/" unless a bind mount or a cgroup namespace)
	MountPoint   string   // where it is mounted
	FSType       string   // e.g. cgroup2, cgroup
	Source       string   // e.g. cgroup2, none
	SuperOptions []string // per-superblock options; for cgroup v1 they name the controllers
}

// ParseMountinfo parses the contents of a mountinfo file. Malformed lines are an error that
// names the line; octal escapes (\040 for a space) are undone.
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var mounts []Mount
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		m, err := parseMountLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		mounts = append(mounts, m)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	return mounts, nil
}

// parseMountLine parses "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER".
func parseMountLine(line string) (Mount, error) {
	pre, post, ok := strings.Cut(line, " - ")
	fields, tail := strings.Fields(pre), strings.Fields(post)
	if !ok || len(fields) < 6 || len(tail) < 2 {
		return Mount{}, fmt.Errorf("malformed: %q", line)
	}
	id, err1 := strconv.Atoi(fields[0])
	parent, err2 := strconv.Atoi(fields[1])
	if err1 != nil || err2 != nil {
		return Mount{}, fmt.Errorf("malformed mount ids: %q", line)
	}
	m := Mount{
		ID: id, ParentID: parent,
		Root:       unescape(fields[3]),
		MountPoint: unescape(fields[4]),
		FSType:     tail[0],
		Source:     unescape(tail[1]),
	}
	if len(tail) > 2 {
		m.SuperOptions = strings.Split(tail[2], ",")
	}
	return m, nil
}

// unescape undoes mountinfo's octal escapes (\040, \011, \012, \134).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Layout is how a host's cgroup hierarchies are arranged.
type Layout string

// Layouts.
const (
	LayoutUnified Layout = "unified" // cgroup v2 only
	LayoutHybrid  Layout = "hybrid"  // v1 controllers plus a cgroup v2 hierarchy (usually /sys/fs/cgroup/unified)
	LayoutLegacy  Layout = "legacy"  // cgroup v1 only
	LayoutNone    Layout = "none"    // no cgroup file system mounted
)

// CgroupMounts are the cgroup hierarchies found in a mount table.
type CgroupMounts struct {
	Layout Layout
	V2     *Mount           // the cgroup v2 mount (the one with the shortest root when several), nil if none
	V1     map[string]Mount // v1 mounts by controller ("memory", "cpu", ...) or name ("name=systemd")
}

// FindCgroupMounts picks the cgroup mounts out of a mount table.
func FindCgroupMounts(mounts []Mount) CgroupMounts {
	cm := CgroupMounts{V1: map[string]Mount{}}
	for i := range mounts {
		m := mounts[i]
		switch m.FSType {
		case "cgroup2":
			if cm.V2 == nil || len(m.Root) < len(cm.V2.Root) {
				cm.V2 = &m
			}
		case "cgroup":
			for _, c := range v1Controllers(m.SuperOptions) {
				if _, dup := cm.V1[c]; !dup {
					cm.V1[c] = m
				}
			}
		}
	}
	switch {
	case cm.V2 != nil && len(cm.V1) > 0:
		cm.Layout = LayoutHybrid
	case cm.V2 != nil:
		cm.Layout = LayoutUnified
	case len(cm.V1) > 0:
		cm.Layout = LayoutLegacy
	default:
		cm.Layout = LayoutNone
	}
	return cm
}

// v1Controllers returns the controllers (and name=NAME) in a cgroup v1 mount's super options.
func v1Controllers(opts []string) []string {
	var out []string
	for _, o := range opts {
		switch {
		case strings.HasPrefix(o, "name="):
			out = append(out, o)
		case strings.Contains(o, "="), slices.Contains(v1Flags, o):
		default:
			out = append(out, o)
		}
	}
	return out
}

// v1Flags are cgroup v1 super options that are not controllers.
var v1Flags = []string{"rw", "ro", "none", "noprefix", "clone_children", "xattr", "cpuset_v2_mode", "favordynmods", "all"}

// V2Dir returns the directory, under the v2 mount, of a cgroup whose hierarchy path is p, or
// false when p lies outside what the mount shows (its root is below p).
func (cm CgroupMounts) V2Dir(p string) (string, bool) {
	if cm.V2 == nil {
		return "", false
	}
	rel, ok := within(cm.V2.Root, p)
	if !ok {
		return "", false
	}
	return path.Join(cm.V2.MountPoint, rel), true
}

// V2Path returns the hierarchy path of the cgroup directory dir under the v2 mount.
func (cm CgroupMounts) V2Path(dir string) (string, bool) {
	if cm.V2 == nil {
		return "", false
	}
	rel, ok := within(cm.V2.MountPoint, dir)
	if !ok {
		return "", false
	}
	return path.Join(cm.V2.Root, rel), true
}

// within returns p relative to base ("/" when equal), or false when p is not under base.
func within(base, p string) (string, bool) {
	base, p = path.Clean(base), path.Clean(p)
	if base == "/" {
		return p, strings.HasPrefix(p, "/")
	}
	if p == base {
		return "/", true
	}
	rest, ok := strings.CutPrefix(p, base+"/")
	return "/" + rest, ok
}
