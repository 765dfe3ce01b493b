package ownership

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// Networks maps named CIDRs (cloud services, on-premises networks, "internet") to their names;
// the longest matching prefix wins. Immutable once parsed.
type Networks struct {
	tables []prefixTable // by descending prefix length
	count  int
}

type prefixTable struct {
	bits int
	v4   bool
	m    map[netip.Prefix]string
}

// names returns the distinct network names.
func (n *Networks) names() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range n.tables {
		for _, name := range t.m {
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	return out
}

// Len returns the number of prefixes.
func (n *Networks) Len() int { return n.count }

// Lookup returns the name of the longest prefix containing a.
func (n *Networks) Lookup(a netip.Addr) (string, bool) {
	a = a.Unmap()
	for i := range n.tables {
		t := &n.tables[i]
		if t.v4 != a.Is4() {
			continue
		}
		p, err := a.Prefix(t.bits)
		if err != nil {
			continue
		}
		if name, ok := t.m[p]; ok {
			return name, true
		}
	}
	return "", false
}

// ParseNetworks parses a named-networks file:
//
//	networks:
//	  - name: s3-eu-west-1
//	    cidrs: [52.218.0.0/17, 3.5.64.0/21]
//	  - name: internet
//	    cidrs: [0.0.0.0/0, "::/0"]
//
// Errors name the file and line. A prefix listed under two names is an error.
func ParseNetworks(file string, data []byte) (*Networks, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return &Networks{}, nil
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: expected a mapping with a 'networks' list", file, root.Line)
	}
	n := &Networks{}
	seen := map[netip.Prefix]string{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "networks" {
			return nil, fmt.Errorf("%s:%d: unknown key %q (expected 'networks')", file, k.Line, k.Value)
		}
		if v.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("%s:%d: 'networks' must be a list", file, v.Line)
		}
		for _, item := range v.Content {
			if err := n.addItem(file, item, seen); err != nil {
				return nil, err
			}
		}
	}
	slices.SortFunc(n.tables, func(a, b prefixTable) int { return b.bits - a.bits })
	return n, nil
}

func (n *Networks) addItem(file string, item *yaml.Node, seen map[netip.Prefix]string) error {
	var it struct {
		Name  string      `yaml:"name"`
		CIDRs []yaml.Node `yaml:"cidrs"`
	}
	if err := item.Decode(&it); err != nil {
		return fmt.Errorf("%s:%d: %w", file, item.Line, err)
	}
	if it.Name == "" {
		return fmt.Errorf("%s:%d: network without a name", file, item.Line)
	}
	if len(it.CIDRs) == 0 {
		return fmt.Errorf("%s:%d: network %q has no cidrs", file, item.Line, it.Name)
	}
	for _, c := range it.CIDRs {
		p, err := netip.ParsePrefix(c.Value)
		if err != nil {
			return fmt.Errorf("%s:%d: network %q: bad CIDR %q: %w", file, c.Line, it.Name, c.Value, err)
		}
		if p != p.Masked() {
			return fmt.Errorf("%s:%d: network %q: CIDR %q has host bits set (did you mean %s?)", file, c.Line, it.Name, c.Value, p.Masked())
		}
		if prev, dup := seen[p]; dup {
			return fmt.Errorf("%s:%d: CIDR %s is listed under both %q and %q", file, c.Line, p, prev, it.Name)
		}
		seen[p] = it.Name
		n.table(p.Bits(), p.Addr().Is4()).m[p] = it.Name
		n.count++
	}
	return nil
}

func (n *Networks) table(bits int, v4 bool) *prefixTable {
	for i := range n.tables {
		if n.tables[i].bits == bits && n.tables[i].v4 == v4 {
			return &n.tables[i]
		}
	}
	n.tables = append(n.tables, prefixTable{bits: bits, v4: v4, m: map[netip.Prefix]string{}})
	return &n.tables[len(n.tables)-1]
}

// NetworkFile keeps a Store's named networks in step with a file: Load parses it and installs
// it; a malformed file gives a clear error (file:line) and the previous networks stay in force.
type NetworkFile struct {
	path  string
	store *Store
	log   *slog.Logger

	mu      sync.Mutex
	modTime time.Time
	size    int64
}

// NewNetworkFile returns a loader for path feeding store.
func NewNetworkFile(path string, store *Store, log *slog.Logger) *NetworkFile {
	return &NetworkFile{path: path, store: store, log: log.With("component", "networks")}
}

// Load reads and installs the file now.
func (f *NetworkFile) Load() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err != nil {
		f.store.m.networkErrors.Inc()
		return fmt.Errorf("reading named networks: %w", err)
	}
	f.modTime, f.size = st.ModTime(), st.Size()
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.store.m.networkErrors.Inc()
		return fmt.Errorf("reading named networks: %w", err)
	}
	n, err := ParseNetworks(f.path, data)
	if err != nil {
		f.store.m.networkErrors.Inc()
		return fmt.Errorf("named networks not reloaded, the previous ones stay in force: %w", err)
	}
	f.store.SetNetworks(n)
	f.store.m.networkPrefixes.Set(float64(n.Len()))
	return nil
}

// changed reports whether the file's modification time or size moved since the last Load.
func (f *NetworkFile) changed() bool {
	st, err := os.Stat(f.path)
	f.mu.Lock()
	defer f.mu.Unlock()
	return err == nil && (!st.ModTime().Equal(f.modTime) || st.Size() != f.size)
}

// Run reloads the file whenever it changes (checked every interval) until ctx ends. Errors
// are logged; the previous networks stay in force.
func (f *NetworkFile) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if !f.changed() {
				continue
			}
			if err := f.Load(); err != nil {
				f.log.Error("reloading named networks", "err", err)
			} else {
				f.log.Info("named networks reloaded", "path", f.path)
			}
		}
	}
}
