package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/flowscope/flowscope/internal/collector/kube"
)

// kubeAPI runs the demo against a real API server: the cluster's objects are written to it
// as they change (KubeWriter), real informers (kube.Source) watch them, and their events reach
// the tracker after a synthetic delay of up to Cluster.KubeDelay, in order.
type kubeAPI struct {
	client kubernetes.Interface
	ctx    context.Context
	col    *collector
	source *kube.Source
	cancel context.CancelFunc
	done   chan error
	delay  time.Duration

	written  atomic.Int64 // mutations of watched objects
	received atomic.Int64 // informer events

	mu    sync.Mutex
	rng   *rand.Rand
	queue []delayedEvent
	last  time.Time
}

type delayedEvent struct {
	at    time.Time
	apply func()
}

func startKubeAPI(ctx context.Context, opts Options, col *collector) (*kubeAPI, error) {
	a := &kubeAPI{client: opts.KubeClient, ctx: ctx, col: col, done: make(chan error, 1),
		rng: rand.New(rand.NewPCG(opts.Cluster.Seed, 0xc0be)), delay: max(0, opts.Cluster.KubeDelay-networkTick)}
	for _, ns := range namespaces {
		_, err := a.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("demo: creating namespace %s: %w", ns, err)
		}
	}
	a.source = kube.NewSource(a.client, a, col.store, col.now, opts.Log, 100*time.Millisecond)
	a.source.MarkSynced = func(time.Time) {} // the events are delayed here: the run marks
	sctx, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	go func() { a.done <- a.source.Run(sctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for !a.source.Synced() {
		if time.Now().After(deadline) {
			a.stop()
			return nil, fmt.Errorf("demo: informers did not sync within 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return a, nil
}

func (a *kubeAPI) stop() {
	a.cancel()
	<-a.done
}

// settle waits until the informers delivered every write, then applies the events due by now.
func (a *kubeAPI) settle(now time.Time) error {
	deadline := time.Now().Add(30 * time.Second)
	for a.received.Load() < a.written.Load() {
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: informers delivered %d events for %d writes within 30 s", a.received.Load(), a.written.Load())
		}
		time.Sleep(200 * time.Microsecond)
	}
	a.mu.Lock()
	sort.SliceStable(a.queue, func(i, j int) bool { return a.queue[i].at.Before(a.queue[j].at) })
	n := 0
	for n < len(a.queue) && !a.queue[n].at.After(now) {
		n++
	}
	due := append([]delayedEvent(nil), a.queue[:n]...)
	a.queue = a.queue[n:]
	a.mu.Unlock()
	for _, e := range due {
		e.apply()
	}
	return nil
}

// later queues an informer event for the tracker, delayed and in order.
func (a *kubeAPI) later(f func()) {
	a.received.Add(1)
	a.mu.Lock()
	defer a.mu.Unlock()
	at := a.col.now().Add(time.Duration(a.rng.Float64() * float64(a.delay)))
	if at.Before(a.last) {
		at = a.last
	}
	a.last = at
	a.queue = append(a.queue, delayedEvent{at: at, apply: f})
}

// kube.Objects, delaying every event on its way to the tracker.

func (a *kubeAPI) Pod(p *corev1.Pod) {
	a.later(func() { a.col.tracker.Pod(p) })
}
func (a *kubeAPI) PodDeleted(p *corev1.Pod)  { a.later(func() { a.col.tracker.PodDeleted(p) }) }
func (a *kubeAPI) Service(s *corev1.Service) { a.later(func() { a.col.tracker.Service(s) }) }
func (a *kubeAPI) ServiceDeleted(s *corev1.Service) {
	a.later(func() { a.col.tracker.ServiceDeleted(s) })
}
func (a *kubeAPI) Node(n *corev1.Node)             { a.later(func() { a.col.tracker.Node(n) }) }
func (a *kubeAPI) NodeDeleted(n *corev1.Node)      { a.later(func() { a.col.tracker.NodeDeleted(n) }) }
func (a *kubeAPI) ReplicaSet(r *appsv1.ReplicaSet) { a.later(func() { a.col.tracker.ReplicaSet(r) }) }
func (a *kubeAPI) Job(j *batchv1.Job)              { a.later(func() { a.col.tracker.Job(j) }) }
func (a *kubeAPI) JobDeleted(j *batchv1.Job)       { a.later(func() { a.col.tracker.JobDeleted(j) }) }
func (a *kubeAPI) ReplicaSetDeleted(r *appsv1.ReplicaSet) {
	a.later(func() { a.col.tracker.ReplicaSetDeleted(r) })
}
func (a *kubeAPI) EndpointSlice(s *discoveryv1.EndpointSlice) {
	a.later(func() { a.col.tracker.EndpointSlice(s) })
}
func (a *kubeAPI) EndpointSliceDeleted(s *discoveryv1.EndpointSlice) {
	a.later(func() { a.col.tracker.EndpointSliceDeleted(s) })
}

// Write implements KubeWriter: it applies one change of the synthetic cluster to the API
// server, as the controllers and kubelets of a real cluster would.
func (a *kubeAPI) Write(typ watch.EventType, obj runtime.Object) (string, error) {
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	switch o := obj.(type) {
	case *corev1.Pod:
		return a.writePod(ctx, typ, o)
	case *corev1.Node:
		// A node registers with its status (addresses), as a kubelet does.
		_, err := a.client.CoreV1().Nodes().Create(ctx, stripped(o), metav1.CreateOptions{})
		return "", a.wrote(err, "node", o.Name)
	case *corev1.Service:
		_, err := a.client.CoreV1().Services(o.Namespace).Create(ctx, stripped(o), metav1.CreateOptions{})
		return "", a.wrote(err, "service", o.Name)
	case *appsv1.ReplicaSet:
		_, err := a.client.AppsV1().ReplicaSets(o.Namespace).Create(ctx, stripped(o), metav1.CreateOptions{})
		return "", a.wrote(err, "replicaset", o.Name)
	case *discoveryv1.EndpointSlice:
		return "", a.writeSlice(ctx, o)
	}
	return "", fmt.Errorf("demo: cannot write %T", obj)
}

func (a *kubeAPI) wrote(err error, what, name string) error {
	if err != nil {
		return fmt.Errorf("demo: writing %s %s: %w", what, name, err)
	}
	a.written.Add(1)
	return nil
}

// stripped drops what the server sets itself (UID, creation time).
func stripped[T interface{ GetObjectMeta() metav1.Object }](o T) T {
	m := o.GetObjectMeta()
	m.SetUID("")
	m.SetCreationTimestamp(metav1.Time{})
	return o
}

func (a *kubeAPI) writePod(ctx context.Context, typ watch.EventType, o *corev1.Pod) (string, error) {
	pods := a.client.CoreV1().Pods(o.Namespace)
	switch {
	case typ == watch.Deleted:
		zero := int64(0)
		return "", a.wrote(pods.Delete(ctx, o.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}), "pod deletion", o.Name)
	case typ == watch.Added:
		status := o.Status
		p, err := pods.Create(ctx, stripped(o.DeepCopy()), metav1.CreateOptions{})
		if err := a.wrote(err, "pod", o.Name); err != nil {
			return "", err
		}
		if status.PodIP == "" {
			return string(p.UID), nil
		}
		p.Status = status
		_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return string(p.UID), a.wrote(err, "pod status", o.Name)
	case o.DeletionTimestamp != nil:
		return "", nil // graceful deletion starts: the kubelet's final delete follows
	}
	p, err := pods.Get(ctx, o.Name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("demo: reading pod %s: %w", o.Name, err)
	}
	p.Status = o.Status
	_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return "", a.wrote(err, "pod status", o.Name)
}

func (a *kubeAPI) writeSlice(ctx context.Context, o *discoveryv1.EndpointSlice) error {
	slices := a.client.DiscoveryV1().EndpointSlices(o.Namespace)
	cur, err := slices.Get(ctx, o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = slices.Create(ctx, stripped(o), metav1.CreateOptions{})
		return a.wrote(err, "endpointslice", o.Name)
	}
	if err != nil {
		return fmt.Errorf("demo: reading endpointslice %s: %w", o.Name, err)
	}
	if equality.Semantic.DeepEqual(cur.Endpoints, o.Endpoints) {
		return nil // an unchanged object yields no watch event
	}
	cur.Endpoints = o.Endpoints
	_, err = slices.Update(ctx, cur, metav1.UpdateOptions{})
	return a.wrote(err, "endpointslice", o.Name)
}
