// Package identity names the local workload of a flow from the socket's cgroup: it maps a
// cgroup v2 id to its path on the running host (discovering the cgroup mounts at run time) and
// the path to a pod, container, systemd unit or plain cgroup, with a bounded cache, and falls
// back to the process's own cgroups where the socket's cgroup cannot tell (cgroup v1 hosts).
package identity

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/flow"
)

// Config tunes a Resolver. Zero values take the defaults.
type Config struct {
	CacheSize      int           // workloads kept, by cgroup id and by pid (default 4096); the clock policy evicts when full
	RewalkInterval time.Duration // least time between two walks of the cgroup tree on misses (default 1s)
	NegativeTTL    time.Duration // how long an id that could not be resolved stays unresolved (default 10s)
	ProcessTTL     time.Duration // how long a pid's cgroup (the v1 fallback) is trusted (default 5s)
	MaxWalk        int           // cgroups indexed by one walk at most (default 200000)
	NoHandles      bool          // resolve by walking only, never with open_by_handle_at
	NoProcess      bool          // never name a workload from the process's cgroups (the v1 fallback)

	Mountinfo string           // mount table to read (default /proc/self/mountinfo)
	ProcRoot  string           // procfs mount point (default /proc)
	Now       func() time.Time // clock (default time.Now)
}

func (c *Config) setDefaults() error {
	if c.CacheSize < 0 || c.RewalkInterval < 0 || c.NegativeTTL < 0 || c.ProcessTTL < 0 || c.MaxWalk < 0 {
		return fmt.Errorf("identity config %+v: sizes and durations must not be negative", *c)
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.RewalkInterval, time.Second)
	def(&c.NegativeTTL, 10*time.Second)
	def(&c.ProcessTTL, 5*time.Second)
	if c.CacheSize == 0 {
		c.CacheSize = 4096
	}
	if c.MaxWalk == 0 {
		c.MaxWalk = 200_000
	}
	if c.Mountinfo == "" {
		c.Mountinfo = "/proc/self/mountinfo"
	}
	if c.ProcRoot == "" {
		c.ProcRoot = "/proc"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// pidKey marks cache keys that are pids (cgroup ids never have the top bit set).
const pidKey = 1 << 63

// Resolver turns a socket's cgroup id (and, when known, the pid that created it) into a
// flow.Workload. It is safe for concurrent use; a cached id costs a map lookup under a read lock.
type Resolver struct {
	cfg    Config
	log    *slog.Logger
	mounts CgroupMounts
	proc   ProcReader
	cache  *cache
	m      metrics

	paths  pathSource      // cgroup id → path on the v2 hierarchy
	handle *handleResolver // nil when resolving by walking

	walkMu   sync.Mutex
	lastWalk time.Time
	walked   map[uint64]string // the last walk's index
}

// NewResolver discovers the cgroup mounts and prepares the cache. It fails only on bad config
// or an unreadable mount table; a host without cgroup v2 resolves through processes alone.
func NewResolver(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Resolver, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	f, err := os.Open(cfg.Mountinfo)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	mounts, err := ParseMountinfo(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	r := &Resolver{
		cfg:    cfg,
		log:    log.With("component", "identity"),
		mounts: FindCgroupMounts(mounts),
		proc:   ProcReader{Root: cfg.ProcRoot},
		cache:  newCache(cfg.CacheSize),
		m:      newMetrics(),
	}
	if err := r.m.register(reg, r.cache); err != nil {
		return nil, err
	}
	r.paths = r.walkLookup
	if r.mounts.V2 != nil && !cfg.NoHandles {
		if h, err := newHandleResolver(r.mounts, cfg.ProcRoot); err != nil {
			r.log.Info("resolving cgroup ids by walking the cgroup tree", "reason", err)
		} else {
			r.paths, r.handle = h.lookup, h
		}
	}
	v2 := ""
	if r.mounts.V2 != nil {
		v2 = r.mounts.V2.MountPoint
	}
	r.log.Info("cgroup layout", "layout", r.mounts.Layout, "v2", v2, "v1_hierarchies", len(r.mounts.V1))
	return r, nil
}

// Layout returns the cgroup layout found at start.
func (r *Resolver) Layout() CgroupMounts { return r.mounts }

// Workload names the workload of a socket in cgroup cgroupID, created by process pid with
// command comm (0 and "" when unknown; they are copied into the result when given). Where the
// socket's cgroup is the v2 root but the host keeps processes in cgroup v1 hierarchies, the
// process's own cgroups name the workload instead.
func (r *Resolver) Workload(cgroupID uint64, pid uint32, comm string) flow.Workload {
	r.m.lookups.Inc()
	w, ok := r.cache.get(cgroupID, r.cfg.Now)
	if ok {
		r.m.hits.Inc()
	} else {
		r.m.misses.Inc()
		w = r.resolve(cgroupID)
	}
	if w.Kind == flow.KindHost && pid != 0 && !r.cfg.NoProcess && r.mounts.Layout != LayoutUnified {
		w = r.byProcess(pid, w)
	}
	w.Pid, w.Comm = pid, comm
	return w
}

// resolve finds the path of a cgroup id and caches what it names (for a while, when nothing).
func (r *Resolver) resolve(id uint64) flow.Workload {
	p, err := r.paths(id)
	var expires time.Time
	var w flow.Workload
	switch {
	case err == nil:
		w = ParseCgroupPath(p)
	case errors.Is(err, errRateLimited):
		r.m.unresolved.Inc()
		return flow.Workload{Kind: flow.KindUnknown} // not cached: the next walk may find it
	case errors.Is(err, errNotFound):
		r.m.unresolved.Inc()
		w, expires = flow.Workload{Kind: flow.KindUnknown}, r.cfg.Now().Add(r.cfg.NegativeTTL)
	default:
		r.m.unresolved.Inc()
		r.log.Debug("resolving cgroup id", "cgroup_id", id, "err", err)
		w, expires = flow.Workload{Kind: flow.KindUnknown}, r.cfg.Now().Add(r.cfg.NegativeTTL)
	}
	if r.cache.put(id, w, expires) {
		r.m.evictions.Inc()
	}
	return w
}

// byProcess names the workload from process pid's cgroups (v1 hosts), keeping host when the
// process is gone or sits in root cgroups too.
func (r *Resolver) byProcess(pid uint32, host flow.Workload) flow.Workload {
	key := pidKey | uint64(pid)
	if w, ok := r.cache.get(key, r.cfg.Now); ok {
		return w
	}
	r.m.processLookups.Inc()
	p, err := r.proc.CgroupPath(pid)
	if err != nil {
		return host // gone: do not cache, the pid may come back as another process
	}
	w := ParseCgroupPath(p)
	if r.cache.put(key, w, r.cfg.Now().Add(r.cfg.ProcessTTL)) {
		r.m.evictions.Inc()
	}
	return w
}

// Close releases the file descriptor of the cgroup mount.
func (r *Resolver) Close() error {
	if r.handle == nil {
		return nil
	}
	return r.handle.close()
}

// Comm returns the command name of process pid from procfs ("" when it is gone).
func (r *Resolver) Comm(pid uint32) string {
	c, err := r.proc.Comm(pid)
	if err != nil {
		return ""
	}
	return c
}
