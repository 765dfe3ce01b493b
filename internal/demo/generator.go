package demo

import (
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"
)

// Cluster generates the synthetic cluster's deliveries over synthetic time. It is not safe for
// concurrent use.
type Cluster struct {
	cfg       Config
	rng       *rand.Rand
	now       time.Time // true time simulated so far
	nodes     []*node
	workloads []*workload
	failing   *workload
	holders   map[netip.Addr][]*pod
	ipCount   int
	uidSerial int
	reused    int

	actions  []action // scheduled changes, by time
	actSeq   uint64
	conns    []*conn // open connections, by end
	queue    eventQueue
	kubeLast time.Time // Kubernetes events are delivered in write order
	truth    *Truth
	quiet    bool
	writer   KubeWriter
	err      error
}

type action struct {
	at  time.Time
	seq uint64
	f   func(time.Time)
}

// step is the granularity of the simulation.
const step = 50 * time.Millisecond

// New builds the cluster at cfg.Start; the initial objects are queued for delivery.
func New(cfg Config) (*Cluster, error) { return NewWithWriter(cfg, nil) }

// NewWithWriter builds the cluster writing its objects through w (nil: queued as events).
func NewWithWriter(cfg Config, w KubeWriter) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), now: cfg.Start,
		holders: map[netip.Addr][]*pod{}, truth: newTruth(), kubeLast: cfg.Start, writer: w,
	}
	c.build()
	return c, nil
}

// Err returns the first error of the KubeWriter.
func (c *Cluster) Err() error { return c.err }

// Now returns the true time simulated so far.
func (c *Cluster) Now() time.Time { return c.now }

// Truth returns the ground truth of every connection generated so far.
func (c *Cluster) Truth() *Truth { return c.truth }

// Reused returns how many addresses were handed to another workload so far.
func (c *Cluster) Reused() int { return c.reused }

// Advance simulates up to `to` and returns the events delivered by then, in delivery order.
func (c *Cluster) Advance(to time.Time) []Event {
	for c.now.Before(to) {
		t := c.now.Add(step)
		c.runActions(t)
		c.closeConnections(t)
		if !c.quiet {
			c.churn(t, step)
			c.openConnections(t, step)
		}
		for _, n := range c.nodes {
			if !t.Before(n.nextBatch) {
				c.shipRecords(n, t)
				n.nextBatch = n.nextBatch.Add(c.cfg.BatchEvery)
			}
			if !t.Before(n.nextHB) {
				c.heartbeat(n, t)
				n.nextHB = n.nextHB.Add(c.cfg.HeartbeatEvery)
			}
		}
		c.now = t
	}
	return c.queue.popUntil(to)
}

// StopTraffic stops new connections and churn; open connections still close, exporters keep
// sending heartbeats. The truth is complete once the open connections have closed.
func (c *Cluster) StopTraffic() { c.quiet = true }

func (c *Cluster) at(t time.Time, f func(time.Time)) {
	c.actSeq++
	c.actions = append(c.actions, action{at: t, seq: c.actSeq, f: f})
}

// runActions runs the scheduled changes due by t, each at its own time, earliest first
// (actions may schedule more).
func (c *Cluster) runActions(t time.Time) {
	for {
		sort.Slice(c.actions, func(i, j int) bool {
			if !c.actions[i].at.Equal(c.actions[j].at) {
				return c.actions[i].at.Before(c.actions[j].at)
			}
			return c.actions[i].seq < c.actions[j].seq
		})
		if len(c.actions) == 0 || c.actions[0].at.After(t) {
			return
		}
		a := c.actions[0]
		c.actions = c.actions[1:]
		a.f(a.at)
	}
}

func (c *Cluster) uniform(max time.Duration) time.Duration {
	return time.Duration(c.rng.Float64() * float64(max))
}
