// Package conntrack reads, for the exporter's client sockets, the translation the kernel's
// connection tracking applied to their destination — a Service VIP DNATed to a backend pod
// by kube-proxy — and adds it to their flow records (flow.Record.NatRemoteAddr/Port). It
// asks conntrack over netlink (ctnetlink) for the entry of each record's original tuple: in
// the node's namespace, where kube-proxy translates pods' connections, then in the socket's
// own.
//
// Without connection tracking (nf_conntrack or its netlink interface unavailable) it warns
// once and leaves records untranslated: the collector then attributes such a flow to the
// Service only.
package conntrack

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowscope/flowscope/internal/flow"
)

// Config bounds the Translator. Zero values take the defaults.
type Config struct {
	// MaxLookupsPerSecond bounds the netlink queries (default 10,000: a query costs ≈ 3 µs
	// of CPU, docs/benchmarks/attribution.md): beyond it records go untranslated (counted as
	// Skipped).
	MaxLookupsPerSecond int
	// PlainFor: a destination (address, port) that conntrack showed untranslated is not asked
	// about again from the same namespace for this long (default 1 min): pod and external
	// addresses are dialled directly, Service VIPs and node ports always translated.
	PlainFor time.Duration
	// MissFor: a destination conntrack had no entry for is not asked about again from the
	// same namespace for this long (default 10 s). Where conntrack does not run (a namespace
	// without NAT rules, loopback), asking on every connection would cost ≈ 3 µs per record.
	MissFor time.Duration
	// MaxCached bounds the translations kept for open connections' next records (default
	// 65,536); when full the cache is cleared (counted as CacheResets).
	MaxCached int
	// Retry is how long a namespace whose conntrack could not be reached is left alone
	// (default 5 min).
	Retry time.Duration
}

func (c *Config) defaults() {
	if c.MaxLookupsPerSecond <= 0 {
		c.MaxLookupsPerSecond = 10_000
	}
	if c.PlainFor <= 0 {
		c.PlainFor = time.Minute
	}
	if c.MissFor <= 0 {
		c.MissFor = 10 * time.Second
	}
	if c.MaxCached <= 0 {
		c.MaxCached = 1 << 16
	}
	if c.Retry <= 0 {
		c.Retry = 5 * time.Minute
	}
}

// Stats count what the Translator did, since it was created.
type Stats struct {
	Lookups     uint64 // netlink queries made
	Translated  uint64 // records given a translation
	NotTracked  uint64 // client records conntrack had no entry for
	Skipped     uint64 // client records not looked up: the rate bound, or no conntrack in their namespace
	Plain       uint64 // client records not looked up: their destination was seen untranslated recently
	Errors      uint64 // failed queries (other than "no entry")
	CacheResets uint64
}

// Table is one namespace's conntrack table: the netlink socket, or a fake in tests. Get
// returns the reply tuple of the entry whose original tuple is q, or an error wrapping
// unix.ENOENT when there is none.
type Table interface {
	Get(q Tuple) (reply Tuple, err error)
	Close() error
}

// Opener opens the conntrack table of the network namespace at path ("" for the caller's own).
type Opener func(path string) (Table, error)

// Translator adds NAT translations to client records. Not safe for concurrent use: the
// exporter loop owns it.
type Translator struct {
	cfg  Config
	open Opener
	now  func() time.Time
	log  *slog.Logger

	tables map[uint32]*table // by namespace inode
	cache  map[connKey]translation
	plain  map[dstKey]int64 // destinations seen untranslated → until when they are not asked about
	warned bool

	second int64 // the rate bound's current second, and its lookups
	spent  int
	stats  Stats
	pub    atomic.Pointer[Stats]
}

type table struct {
	t         Table     // nil while unavailable
	failedAt  time.Time // when opening or probing failed
	available bool
}

type connKey struct {
	netns uint32
	id    uint64
}

type dstKey struct {
	netns uint32
	dst   netip.AddrPort
}

type translation struct {
	addr netip.Addr // invalid: not translated
	port uint16
	seen bool // conntrack had the connection's entry
}

// notePlain remembers a destination seen untranslated, or not tracked at all (bounded:
// cleared when full).
func (t *Translator) notePlain(k dstKey, now time.Time, seen bool) {
	if len(t.plain) >= t.cfg.MaxCached {
		clear(t.plain)
		t.stats.CacheResets++
	}
	hold := t.cfg.MissFor
	if seen {
		hold = t.cfg.PlainFor
	}
	t.plain[k] = now.Add(hold).UnixNano()
}

// New returns a Translator opening namespaces with open (Dial when nil).
func New(cfg Config, open Opener, now func() time.Time, log *slog.Logger) *Translator {
	cfg.defaults()
	if open == nil {
		open = Dial
	}
	t := &Translator{cfg: cfg, open: open, now: now, log: log.With("component", "conntrack"),
		tables: map[uint32]*table{}, cache: map[connKey]translation{}, plain: map[dstKey]int64{}}
	t.pub.Store(&Stats{})
	return t
}

// Stats returns the counters; safe from any goroutine.
func (t *Translator) Stats() Stats { return *t.pub.Load() }

// Translate sets NatRemoteAddr/Port on the client records in recs whose destination conntrack
// translated. paths maps namespace inodes to paths that can be entered ("" for the exporter's
// own); namespaces no longer listed are closed.
func (t *Translator) Translate(recs []flow.Record, paths map[uint32]string) {
	now := t.now()
	for i := range recs {
		r := &recs[i]
		if r.Direction != flow.Client || r.NatRemoteAddr.IsValid() {
			continue
		}
		k := connKey{r.Netns, r.ConnID}
		tr, cached := t.cache[k]
		if !cached {
			dk := dstKey{r.Netns, netip.AddrPortFrom(r.RemoteAddr, r.RemotePort)}
			if until, ok := t.plain[dk]; ok && now.UnixNano() < until {
				t.stats.Plain++
				continue
			}
			var ok bool
			if tr, ok = t.lookup(r, paths, now); !ok {
				continue
			}
			if !tr.addr.IsValid() {
				t.notePlain(dk, now, tr.seen)
			}
		}
		switch {
		case !r.Interim && cached:
			delete(t.cache, k) // the final record: no later record needs it
		case r.Interim && !cached:
			if len(t.cache) >= t.cfg.MaxCached {
				clear(t.cache)
				t.stats.CacheResets++
			}
			t.cache[k] = tr
		}
		if tr.addr.IsValid() {
			r.NatRemoteAddr, r.NatRemotePort = tr.addr, tr.port
			t.stats.Translated++
		}
	}
	t.prune(paths)
	s := t.stats
	t.pub.Store(&s)
}

// lookup asks conntrack for r's entry; ok is false when it could not be asked. The node's own
// namespace is asked first — kube-proxy translates a pod's connections there, on their way
// out of the pod — then the socket's own namespace when it is another one.
func (t *Translator) lookup(r *flow.Record, paths map[uint32]string, now time.Time) (translation, bool) {
	host, hasHost := uint32(0), false
	for ino, p := range paths {
		if p == "" {
			host, hasHost = ino, true
			break
		}
	}
	asked := false
	for i, ns := range [2]uint32{host, r.Netns} {
		if (i == 0 && !hasHost) || (i == 1 && hasHost && ns == host) {
			continue
		}
		path, known := paths[ns]
		if !known {
			continue
		}
		tr, found, ok := t.ask(r, ns, path, now)
		asked = asked || ok
		if found {
			return tr, true
		}
	}
	if !asked {
		t.stats.Skipped++
		return translation{}, false
	}
	t.stats.NotTracked++
	return translation{}, true
}

// ask queries one namespace's table: found when it has the entry, ok when it could be asked.
func (t *Translator) ask(r *flow.Record, netns uint32, path string, now time.Time) (tr translation, found, ok bool) {
	if sec := now.Unix(); sec != t.second {
		t.second, t.spent = sec, 0
	}
	if t.spent >= t.cfg.MaxLookupsPerSecond {
		return translation{}, false, false
	}
	tb := t.table(netns, path, now)
	if tb == nil {
		return translation{}, false, false
	}
	t.spent++
	t.stats.Lookups++
	f, err := tb.Get(query(r))
	switch {
	case errors.Is(err, unix.ENOENT):
		return translation{}, false, true
	case err != nil:
		t.stats.Errors++
		t.log.Debug("conntrack query failed", "netns", netns, "err", err)
		return translation{}, false, false
	}
	return translated(r, f), true, true
}

// query is the original tuple of r's connection: local → remote.
func query(r *flow.Record) Tuple {
	if r.LocalAddr.Is4In6() && r.RemoteAddr.Is4In6() {
		// a dual-stack socket's IPv4 connection: conntrack tracks it as IPv4
		return Tuple{Src: r.LocalAddr.Unmap(), Dst: r.RemoteAddr.Unmap(), SrcPort: r.LocalPort, DstPort: r.RemotePort}
	}
	return Tuple{Src: r.LocalAddr, Dst: r.RemoteAddr, SrcPort: r.LocalPort, DstPort: r.RemotePort}
}

// translated reads the destination the connection really reached from its reply tuple (the
// reply comes from the backend): a translation when it differs from the dialled one.
func translated(r *flow.Record, reply Tuple) translation {
	to, port := reply.Src, reply.SrcPort
	if !to.IsValid() || (to == r.RemoteAddr.Unmap() && port == r.RemotePort) {
		return translation{seen: true}
	}
	if r.RemoteAddr.Is4In6() {
		to = netip.AddrFrom16(to.As16()) // as the socket names its addresses
	}
	return translation{addr: to, port: port, seen: true}
}

// table returns the open conntrack table of a namespace, opening (and probing) it when
// needed; nil while it is unavailable.
func (t *Translator) table(netns uint32, path string, now time.Time) Table {
	tb := t.tables[netns]
	if tb == nil {
		tb = &table{}
		t.tables[netns] = tb
	}
	if tb.available {
		return tb.t
	}
	if !tb.failedAt.IsZero() && now.Sub(tb.failedAt) < t.cfg.Retry {
		return nil
	}
	c, err := t.open(path)
	if err == nil {
		err = probe(c)
		if err != nil {
			c.Close()
		}
	}
	if err != nil {
		tb.failedAt = now
		if !t.warned {
			t.warned = true
			t.log.Warn("connection tracking unavailable: client records carry no NAT translation (Service VIPs stay unresolved to their backends)",
				"netns", netns, "err", err)
		}
		return nil
	}
	tb.t, tb.available = c, true
	return c
}

// probe checks that the table answers queries: a lookup of a tuple that cannot exist answers
// "no entry" when conntrack works.
func probe(c Table) error {
	_, err := c.Get(Tuple{Src: netip.AddrFrom4([4]byte{127, 255, 255, 254}), Dst: netip.AddrFrom4([4]byte{127, 255, 255, 253}), SrcPort: 1, DstPort: 1})
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("conntrack query: %w", err)
}

// prune closes the tables of namespaces that are gone.
func (t *Translator) prune(paths map[uint32]string) {
	for ino, tb := range t.tables {
		if _, ok := paths[ino]; ok {
			continue
		}
		if tb.t != nil {
			tb.t.Close()
		}
		delete(t.tables, ino)
	}
}

// Close closes every table.
func (t *Translator) Close() {
	t.prune(nil)
}
