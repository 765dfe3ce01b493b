package demo

import (
	"container/heap"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/flowscope/flowscope/internal/flowbatch"
)

// Event is one thing the synthetic cluster delivers to the collector at At (the collector's
// clock): an exporter batch (records and/or an ownership heartbeat) or a Kubernetes watch event.
type Event struct {
	At    time.Time
	Batch *flowbatch.Batch
	Kube  *KubeEvent
}

// KubeEvent is a watch event as an informer would deliver it: Added, Modified or Deleted, with
// a *corev1.Pod, *corev1.Service, *corev1.Node, *appsv1.ReplicaSet or
// *discoveryv1.EndpointSlice.
type KubeEvent struct {
	Type   watch.EventType
	Object runtime.Object
}

type queued struct {
	ev  Event
	seq uint64
}

// eventQueue orders events by delivery time, then by insertion (a stable order).
type eventQueue struct {
	items []queued
	seq   uint64
}

func (q *eventQueue) Len() int { return len(q.items) }
func (q *eventQueue) Less(i, j int) bool {
	a, b := &q.items[i], &q.items[j]
	if !a.ev.At.Equal(b.ev.At) {
		return a.ev.At.Before(b.ev.At)
	}
	return a.seq < b.seq
}
func (q *eventQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *eventQueue) Push(x any)    { q.items = append(q.items, x.(queued)) }
func (q *eventQueue) Pop() any {
	n := len(q.items) - 1
	x := q.items[n]
	q.items = q.items[:n]
	return x
}

func (q *eventQueue) push(ev Event) {
	q.seq++
	heap.Push(q, queued{ev: ev, seq: q.seq})
}

// popUntil removes and returns the events due at or before t, in order.
func (q *eventQueue) popUntil(t time.Time) []Event {
	var out []Event
	for q.Len() > 0 && !q.items[0].ev.At.After(t) {
		out = append(out, heap.Pop(q).(queued).ev)
	}
	return out
}
