package testnet

import (
	"fmt"
	"testing"
)

// Shape is a token-bucket (tc tbf) shaper: traffic leaving the device beyond Rate waits in a
// queue of up to Latency, which makes the sender's srtt grow. Values use tc's units.
type Shape struct {
	Rate    string // e.g. "20mbit"
	Burst   string // bucket size, e.g. "16kb"
	Latency string // longest wait in the queue before a drop, e.g. "500ms"
}

// Shaper is a tbf qdisc installed as the root qdisc of a device inside a namespace.
type Shaper struct {
	ns  *Netns
	dev string
}

// NewShaper installs a shaper on dev's egress in ns and removes it when the test ends.
func NewShaper(t testing.TB, ns *Netns, dev string, s Shape) *Shaper {
	t.Helper()
	v, err := CreateShaper(ns, dev, s)
	return closeAtEnd(t, v, err)
}

// CreateShaper installs a tbf root qdisc on dev's egress in ns with tc; the caller must Close it.
func CreateShaper(ns *Netns, dev string, s Shape) (*Shaper, error) {
	if s.Rate == "" || s.Burst == "" || s.Latency == "" {
		return nil, fmt.Errorf("shape %+v: rate, burst and latency are all required", s)
	}
	err := ns.Do(func() error {
		return run("tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", s.Rate, "burst", s.Burst, "latency", s.Latency)
	})
	if err != nil {
		return nil, err
	}
	return &Shaper{ns: ns, dev: dev}, nil
}

// Close removes the shaper (a namespace already deleted takes it along).
func (s *Shaper) Close() error {
	if s.ns.path == "" {
		return nil
	}
	return s.ns.Do(func() error { return run("tc", "qdisc", "del", "dev", s.dev, "root") })
}
