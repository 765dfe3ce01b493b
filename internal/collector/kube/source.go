package kube

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/flowscope/flowscope/internal/collector/ownership"
)

// Source runs client-go informers for Pods, Services, EndpointSlices, Nodes, ReplicaSets and
// Jobs, feeds a Tracker, and tells the store up to when the Kubernetes view is complete: only
// while the API server answers its readiness probe (every tick), every informer has synced and
// none has a failed watch that was not relisted since.
// When the API server goes away the mark stops, so nothing is attributed from Kubernetes data
// past its horizon (answers become stale); when it returns, the informers relist and the
// objects that vanished meanwhile are closed at the moment that was observed.
type Source struct {
	client  kubernetes.Interface
	tracker Objects
	store   *ownership.Store
	now     func() time.Time
	log     *slog.Logger
	tick    time.Duration
	// Grace: after the API server or an informer failed, Kubernetes data is trusted again
	// only once every check passed for this long (5 s by default; watches resume with backoff).
	Grace time.Duration
	// MarkSynced receives the sync marks (default: the store's SetKubeSynced). The demo
	// replaces it, since it delays the events itself.
	MarkSynced func(time.Time)

	mu        sync.Mutex
	informers map[string]*watched
}

// watched is one informer and its health: after a watch error it is unhealthy until its last
// synced resource version moves (a successful relist).
type watched struct {
	inf       cache.SharedIndexInformer
	unhealthy bool
	rvAtError string
}

// Objects receives what the informers see; Tracker implements it (the demo interposes a
// delay). Calls come from the informers' goroutines, one at a time per resource type.
type Objects interface {
	Pod(*corev1.Pod)
	PodDeleted(*corev1.Pod)
	Service(*corev1.Service)
	ServiceDeleted(*corev1.Service)
	Node(*corev1.Node)
	NodeDeleted(*corev1.Node)
	EndpointSlice(*discoveryv1.EndpointSlice)
	EndpointSliceDeleted(*discoveryv1.EndpointSlice)
	ReplicaSet(*appsv1.ReplicaSet)
	ReplicaSetDeleted(*appsv1.ReplicaSet)
	Job(*batchv1.Job)
	JobDeleted(*batchv1.Job)
}

var _ Objects = (*Tracker)(nil)

// NewSource returns a Source; tick is how often it checks the informers (1 s if zero).
func NewSource(client kubernetes.Interface, tracker Objects, store *ownership.Store, now func() time.Time, log *slog.Logger, tick time.Duration) *Source {
	if tick <= 0 {
		tick = time.Second
	}
	return &Source{client: client, tracker: tracker, store: store, now: now, log: log.With("component", "kube"), tick: tick, Grace: 5 * time.Second, informers: map[string]*watched{}}
}

// handlers adapts typed add/delete functions to informer callbacks, unwrapping tombstones.
func handlers[T any](upsert, remove func(T)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { typed(obj, upsert) },
		UpdateFunc: func(_, obj any) { typed(obj, upsert) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			typed(obj, remove)
		},
	}
}

func typed[T any](obj any, f func(T)) {
	if v, ok := obj.(T); ok {
		f(v)
	}
}

// Run starts the informers and keeps the store's sync mark until ctx ends.
func (s *Source) Run(ctx context.Context) error {
	f := informers.NewSharedInformerFactory(s.client, 0)
	t := s.tracker
	add := func(name string, inf cache.SharedIndexInformer, h cache.ResourceEventHandler) error {
		w := &watched{inf: inf}
		if err := inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
			s.mu.Lock()
			w.unhealthy, w.rvAtError = true, inf.LastSyncResourceVersion()
			s.mu.Unlock()
			cache.DefaultWatchErrorHandler(ctx, r, err)
		}); err != nil {
			return fmt.Errorf("kube: %s informer: %w", name, err)
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("kube: %s informer: %w", name, err)
		}
		s.mu.Lock()
		s.informers[name] = w
		s.mu.Unlock()
		return nil
	}
	for _, x := range []struct {
		name string
		inf  cache.SharedIndexInformer
		h    cache.ResourceEventHandler
	}{
		{"pods", f.Core().V1().Pods().Informer(), handlers[*corev1.Pod](t.Pod, t.PodDeleted)},
		{"services", f.Core().V1().Services().Informer(), handlers[*corev1.Service](t.Service, t.ServiceDeleted)},
		{"nodes", f.Core().V1().Nodes().Informer(), handlers[*corev1.Node](t.Node, t.NodeDeleted)},
		{"endpointslices", f.Discovery().V1().EndpointSlices().Informer(), handlers[*discoveryv1.EndpointSlice](t.EndpointSlice, t.EndpointSliceDeleted)},
		{"replicasets", f.Apps().V1().ReplicaSets().Informer(), handlers[*appsv1.ReplicaSet](t.ReplicaSet, t.ReplicaSetDeleted)},
		{"jobs", f.Batch().V1().Jobs().Informer(), handlers[*batchv1.Job](t.Job, t.JobDeleted)},
	} {
		if err := add(x.name, x.inf, x.h); err != nil {
			return err
		}
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	tk := time.NewTicker(s.tick)
	defer tk.Stop()
	var prev, recoverAt time.Time // the previous healthy tick; when a recovery is trusted
	down := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
		now := s.now()
		if !s.probe(ctx) || !s.healthy() {
			if !down {
				s.log.Warn("Kubernetes API unreachable or informers failing: Kubernetes ownership is not trusted past now")
			}
			prev, down = time.Time{}, true
			continue
		}
		if down {
			// The informers resume their watches (or relist) with backoff: trust them again
			// only after the grace, so the events of the outage have been replayed.
			down, recoverAt = false, now.Add(s.Grace)
		}
		if now.Before(recoverAt) {
			continue
		}
		// Mark the previous healthy tick, so that this tick's events have been handled.
		if !prev.IsZero() {
			if s.MarkSynced != nil {
				s.MarkSynced(prev)
			} else {
				s.store.SetKubeSynced(prev)
			}
		}
		prev = now
	}
}

// probe asks the API server whether it is ready.
func (s *Source) probe(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, max(s.tick, time.Second))
	defer cancel()
	return s.client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error() == nil
}

// Synced reports whether every informer has listed its objects once.
func (s *Source) Synced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.informers) == 0 {
		return false
	}
	for _, w := range s.informers {
		if !w.inf.HasSynced() {
			return false
		}
	}
	return true
}

// healthy reports whether every informer has synced and has no unrecovered watch error.
func (s *Source) healthy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := true
	for name, w := range s.informers {
		if !w.inf.HasSynced() {
			ok = false
			continue
		}
		if w.unhealthy && w.inf.LastSyncResourceVersion() != w.rvAtError {
			w.unhealthy = false
			s.log.Info("informer recovered", "informer", name)
		}
		ok = ok && !w.unhealthy
	}
	return ok
}
