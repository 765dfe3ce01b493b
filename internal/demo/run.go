package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/prometheus/client_golang/prometheus"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/collector/attribute"
	"github.com/flowscope/flowscope/internal/collector/ingest"
	"github.com/flowscope/flowscope/internal/collector/kube"
	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// Options drive one demo run.
type Options struct {
	Cluster  Config
	Duration time.Duration // simulated time during which traffic is generated
	// Ingest: "grpc" ships every node's records and heartbeats with a real exporter Shipper
	// over gRPC on loopback to the real collector ingest (validate, de-duplicate, fsync'd
	// spool, consumer) in front of attribution; "spool" hands encoded batches to the ingest
	// without the network; "direct" hands batches to attribution as they are.
	Ingest   string
	SpoolDir string               // for the spool ingest (a temporary directory when empty)
	Window   time.Duration        // attribution holding window (60 s if zero)
	Sink     attribute.Sink       // also receives every connection, when set
	Registry *prometheus.Registry // metrics (a private registry when nil)
	Log      *slog.Logger         // (discarded when nil)
	Progress func(simulated time.Duration)
	// KubeClient, when set, makes the run write the cluster's objects to a real API server
	// as they change and feed attribution from informers on it (Kubernetes events delayed by
	// up to Cluster.KubeDelay between the informers and the tracker).
	KubeClient kubernetes.Interface
}

// Result is a finished run.
type Result struct {
	Report *Report
	Truth  *Truth
	Conns  []flow.Conn
	Reused int // addresses handed to another workload
}

// tick is how far the collector's clock moves between deliveries; over the network (where
// every delivery waits for acknowledgements in real time) deliveries are grouped per second.
const (
	tick        = 100 * time.Millisecond
	networkTick = time.Second
)

// collector is the collector side: ownership store, Kubernetes tracker, attribution.
type collector struct {
	clock   atomic.Int64 // Unix ns: the simulated collector clock, read from other goroutines
	store   *ownership.Store
	tracker *kube.Tracker
	attr    *attribute.Attributor
	cons    *attribute.Consumer
	mu      sync.Mutex
	conns   []flow.Conn
}

// Run simulates the cluster for opts.Duration feeding a real collector pipeline whose clock is
// the simulation's, then lets the holding window drain and verifies against the truth.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.Cluster.Validate(); err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	col, err := newCollector(opts)
	if err != nil {
		return nil, err
	}
	applyKube := func(ev *KubeEvent) { ApplyKube(col.tracker, ev) }
	var api *kubeAPI
	var writer KubeWriter
	if opts.KubeClient != nil {
		if api, err = startKubeAPI(ctx, opts, col); err != nil {
			return nil, err
		}
		defer api.stop()
		writer = api
	}
	cl, err := NewWithWriter(opts.Cluster, writer)
	if err != nil {
		return nil, err
	}
	deliver := func(bs []*flowbatch.Batch) error {
		for _, b := range bs {
			col.cons.Apply(b)
		}
		return nil
	}
	switch opts.Ingest {
	case "grpc":
		sh, err := startShippers(ctx, opts, col)
		if err != nil {
			return nil, err
		}
		defer sh.stop()
		deliver = sh.deliver
	case "spool":
		sp, err := startSpool(ctx, opts, col, "")
		if err != nil {
			return nil, err
		}
		defer sp.stop()
		deliver = sp.deliver
	case "", "direct":
	default:
		return nil, fmt.Errorf("demo: unknown ingest %q (grpc, spool or direct)", opts.Ingest)
	}
	if opts.Window <= 0 {
		opts.Window = time.Minute
	}
	end := opts.Cluster.Start.Add(opts.Duration)
	drainUntil := end.Add(opts.Cluster.HeartbeatDelay + 2*opts.Window + 10*time.Second)
	now, lastFlush, step := col.now(), col.now(), tick
	if opts.Ingest == "grpc" || api != nil {
		step = networkTick
	}
	for now.Before(drainUntil) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		now = now.Add(step)
		col.clock.Store(now.UnixNano())
		if !now.Before(end) {
			cl.StopTraffic()
		}
		evs := cl.Advance(now)
		if err := cl.Err(); err != nil {
			return nil, err
		}
		var batches []*flowbatch.Batch
		for _, ev := range evs {
			if ev.Kube != nil {
				applyKube(ev.Kube)
			} else {
				batches = append(batches, ev.Batch)
			}
		}
		if api != nil {
			if err := api.settle(now); err != nil { // the informers saw every write; delayed events due by now applied
				return nil, err
			}
		}
		if err := deliver(batches); err != nil {
			return nil, err
		}
		col.store.SetKubeSynced(now)
		if now.Sub(lastFlush) >= time.Second {
			lastFlush = now
			if err := col.attr.Flush(ctx); err != nil {
				return nil, err
			}
			if now.Second() == 0 {
				col.store.Compact(now)
			}
			if opts.Progress != nil {
				opts.Progress(now.Sub(opts.Cluster.Start))
			}
		}
	}
	if err := col.attr.Flush(ctx); err != nil {
		return nil, err
	}
	return &Result{Report: cl.Truth().Verify(col.conns), Truth: cl.Truth(), Conns: col.conns, Reused: cl.Reused()}, nil
}

// now returns the simulated collector clock.
func (col *collector) now() time.Time { return time.Unix(0, col.clock.Load()).UTC() }

func newCollector(opts Options) (*collector, error) {
	col := &collector{}
	col.clock.Store(opts.Cluster.Start.UnixNano())
	clock := col.now
	var err error
	c := opts.Cluster
	col.store, err = ownership.New(ownership.Config{
		Horizon:       15 * time.Minute,
		SkewTolerance: 2*c.ClockSkew + 5*time.Millisecond,
		KubeLag:       c.KubeDelay + 2*c.KubeletLatency + time.Second,
	}, clock, opts.Registry)
	if err != nil {
		return nil, err
	}
	nets, err := ownership.ParseNetworks("demo-networks.yaml", []byte(NetworksYAML))
	if err != nil {
		return nil, err
	}
	col.store.SetNetworks(nets)
	col.tracker = kube.NewTracker(kube.Config{Cluster: c.Cluster}, col.store, clock, opts.Log)
	sink := attribute.SinkFunc(func(ctx context.Context, conns []flow.Conn) error {
		col.mu.Lock()
		col.conns = append(col.conns, conns...)
		col.mu.Unlock()
		if opts.Sink != nil {
			return opts.Sink.Write(ctx, conns)
		}
		return nil
	})
	col.attr, err = attribute.New(attribute.Config{Window: opts.Window}, col.store, sink, clock, opts.Registry, opts.Log)
	if err != nil {
		return nil, err
	}
	col.cons = attribute.NewConsumer(col.attr)
	return col, nil
}

// ApplyKube hands one watch event to a tracker, as the informers would.
func ApplyKube(t *kube.Tracker, ev *KubeEvent) {
	del := ev.Type == watch.Deleted
	switch o := ev.Object.(type) {
	case *corev1.Pod:
		if del {
			t.PodDeleted(o)
		} else {
			t.Pod(o)
		}
	case *corev1.Service:
		if del {
			t.ServiceDeleted(o)
		} else {
			t.Service(o)
		}
	case *corev1.Node:
		if del {
			t.NodeDeleted(o)
		} else {
			t.Node(o)
		}
	case *discoveryv1.EndpointSlice:
		if del {
			t.EndpointSliceDeleted(o)
		} else {
			t.EndpointSlice(o)
		}
	case *appsv1.ReplicaSet:
		if del {
			t.ReplicaSetDeleted(o)
		} else {
			t.ReplicaSet(o)
		}
	}
}

// spool runs the real collector ingest in front of attribution: batches are encoded, accepted
// (validated, de-duplicated, fsync'd) and consumed from the spool before the clock moves on.
type spool struct {
	in         *ingest.Ingest
	enc        *flowbatch.Encoder
	accepted   atomic.Int64
	consumed   atomic.Int64
	records    atomic.Int64 // records consumed
	heartbeats atomic.Int64 // heartbeats consumed
	cons       *attribute.Consumer
	tmp        string
}

func startSpool(ctx context.Context, opts Options, col *collector, grpcListen string) (*spool, error) {
	dir := opts.SpoolDir
	sp := &spool{enc: flowbatch.NewEncoder(), cons: col.cons}
	if dir == "" {
		d, err := os.MkdirTemp("", "flowscope-demo-spool-")
		if err != nil {
			return nil, fmt.Errorf("demo: spool directory: %w", err)
		}
		dir, sp.tmp = d, d
	}
	cfg := ingest.DefaultConfig()
	cfg.GRPCListen, cfg.HTTPSListen, cfg.UDPListen, cfg.SpoolDir = grpcListen, "", "", dir
	cfg.InsecurePlaintext = grpcListen != ""
	in, err := ingest.New(cfg, opts.Registry, opts.Log, col.now)
	if err != nil {
		return nil, err
	}
	in.AddConsumer(sp)
	if err := in.Start(ctx); err != nil {
		return nil, err
	}
	sp.in = in
	return sp, nil
}

func (s *spool) Name() string { return "demo-attribution" }

func (s *spool) Consume(ctx context.Context, e ingest.Entry) error {
	err := s.cons.Consume(ctx, e)
	s.records.Add(int64(len(e.Batch.Records)))
	if e.Batch.Heartbeat != nil {
		s.heartbeats.Add(1)
	}
	s.consumed.Add(1)
	return err
}

// deliver accepts the batches through the ingest and waits until attribution consumed them.
func (s *spool) deliver(bs []*flowbatch.Batch) error {
	if len(bs) == 0 {
		return nil
	}
	datas := make([][]byte, len(bs))
	for i, b := range bs {
		d, err := s.enc.Marshal(b)
		if err != nil {
			return fmt.Errorf("demo: encoding batch: %w", err)
		}
		datas[i] = d
	}
	for i, ack := range s.in.AcceptMany("demo", datas) {
		switch ack.Status {
		case flowv1.Ack_STATUS_ACCEPTED:
			s.accepted.Add(1)
		case flowv1.Ack_STATUS_DUPLICATE:
		default:
			return fmt.Errorf("demo: batch %s/%d rejected by the ingest: %s %s", bs[i].ExporterID, bs[i].Sequence, ack.Reason, ack.Message)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.consumed.Load() < s.accepted.Load() {
		if time.Now().After(deadline) {
			return errors.New("demo: the ingest did not hand batches on within 30 s")
		}
		time.Sleep(200 * time.Microsecond)
	}
	return nil
}

func (s *spool) stop() {
	_ = s.in.Stop()
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
	}
}
