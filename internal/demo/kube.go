package demo

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// KubeWriter writes the cluster's objects to a real API server as they change (instead of
// queueing watch events); it returns the UID the server gave a created pod.
type KubeWriter interface {
	Write(typ watch.EventType, obj runtime.Object) (uid string, err error)
}

// kube queues a watch event written at w: delivered within KubeDelay, in write order. With a
// KubeWriter the object goes to the API server now and its informers deliver the event.
func (c *Cluster) kube(typ watch.EventType, obj runtime.Object, w time.Time) string {
	if c.writer != nil {
		uid, err := c.writer.Write(typ, obj)
		if err != nil && c.err == nil {
			c.err = err
		}
		return uid
	}
	at := w.Add(c.uniform(c.cfg.KubeDelay))
	if at.Before(c.kubeLast) {
		at = c.kubeLast
	}
	c.kubeLast = at
	c.queue.push(Event{At: at, Kube: &KubeEvent{Type: typ, Object: obj}})
	return ""
}

func meta(ns, name, uid string, created time.Time) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), CreationTimestamp: metav1.NewTime(created.Truncate(time.Second))}
}

func (c *Cluster) emitInitialObjects() {
	for _, n := range c.nodes {
		c.kube(watch.Added, NodeObject(n.name, n.zone, n.ip.String(), n.created), c.cfg.Start)
	}
	for _, w := range c.workloads {
		if w.kind != "Deployment" {
			continue
		}
		c.kube(watch.Added, ServiceObject(w.ns, w.name, w.svcUID, w.vip.String(), w.port, c.cfg.Start.Add(-2*time.Hour)), c.cfg.Start)
		rs := &appsv1.ReplicaSet{ObjectMeta: meta(w.ns, w.name+"-"+w.hash, "rs-"+w.svcUID, c.cfg.Start.Add(-2*time.Hour))}
		rs.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: w.name, UID: types.UID("dep-" + w.svcUID), Controller: ptr(true)}}
		rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": w.name}}
		rs.Spec.Template.Labels = map[string]string{"app": w.name, "pod-template-hash": w.hash}
		rs.Spec.Template.Spec.Containers = []corev1.Container{{Name: "app", Image: "demo/" + w.name}}
		c.kube(watch.Added, rs, c.cfg.Start)
	}
}

func ptr[T any](v T) *T { return &v }

// NodeObject is a Node in a zone with one InternalIP.
func NodeObject(name, zone, ip string, created time.Time) *corev1.Node {
	n := &corev1.Node{ObjectMeta: meta("", name, "node-uid-"+name, created)}
	n.Labels = map[string]string{corev1.LabelTopologyZone: zone}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
	return n
}

// ServiceObject is a ClusterIP Service.
func ServiceObject(ns, name, uid, vip string, port uint16, created time.Time) *corev1.Service {
	s := &corev1.Service{ObjectMeta: meta(ns, name, uid, created)}
	s.Spec.ClusterIP, s.Spec.ClusterIPs = vip, []string{vip}
	s.Spec.Ports = []corev1.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: int32(port)}}
	s.Spec.Selector = map[string]string{"app": name}
	return s
}

// podObject renders p as the API server holds it at a phase.
func (c *Cluster) podObject(p *pod, phase corev1.PodPhase, withIP bool) *corev1.Pod {
	o := &corev1.Pod{ObjectMeta: meta(p.w.ns, p.name, p.uid, p.created)}
	o.Labels = map[string]string{"app": p.w.name}
	ctrl := metav1.OwnerReference{APIVersion: "apps/v1", Kind: p.w.kind, Name: p.w.name, UID: types.UID("sts-" + p.w.name), Controller: ptr(true)}
	if p.w.kind == "Deployment" {
		o.Labels["pod-template-hash"] = p.w.hash
		ctrl.Kind, ctrl.Name, ctrl.UID = "ReplicaSet", p.rs, types.UID("rs-"+p.w.svcUID)
	}
	o.OwnerReferences = []metav1.OwnerReference{ctrl}
	o.Spec.NodeName = p.node.name
	o.Spec.ServiceAccountName = p.w.name
	o.Spec.Containers = []corev1.Container{{Name: "app", Image: "demo/" + p.w.name, Ports: []corev1.ContainerPort{{ContainerPort: int32(p.w.port), Protocol: corev1.ProtocolTCP}}}}
	o.Status.Phase = phase
	if withIP {
		o.Status.PodIP = p.ip.String()
		o.Status.PodIPs = []corev1.PodIP{{IP: p.ip.String()}}
	}
	return o
}

func (c *Cluster) emitPodInitial(p *pod) {
	if uid := c.kube(watch.Added, c.podObject(p, corev1.PodRunning, true), c.cfg.Start); uid != "" {
		p.uid = uid
	}
	c.emitSlice(p.w, c.cfg.Start)
}

func (c *Cluster) emitPodPending(p *pod, t time.Time) {
	if uid := c.kube(watch.Added, c.podObject(p, corev1.PodPending, false), t); uid != "" {
		p.uid = uid
	}
}

func (c *Cluster) emitPodRunning(p *pod, assigned time.Time) {
	w := assigned.Add(c.cfg.KubeletLatency)
	c.kube(watch.Modified, c.podObject(p, corev1.PodRunning, true), w)
	c.emitSlice(p.w, w.Add(c.cfg.KubeletLatency))
}

func (c *Cluster) emitPodTerminating(p *pod, t time.Time) {
	o := c.podObject(p, corev1.PodRunning, true)
	o.DeletionTimestamp = ptr(metav1.NewTime(t))
	c.kube(watch.Modified, o, t)
}

func (c *Cluster) emitPodDeleted(p *pod, t time.Time) {
	c.kube(watch.Deleted, c.podObject(p, corev1.PodRunning, true), t)
	c.emitSlice(p.w, t)
}

// emitSlice writes the workload's EndpointSlice listing its running pods.
func (c *Cluster) emitSlice(w *workload, t time.Time) {
	if w.kind != "Deployment" {
		return
	}
	s := &discoveryv1.EndpointSlice{ObjectMeta: meta(w.ns, w.name+"-eps", "eps-"+w.svcUID, c.cfg.Start.Add(-2*time.Hour)), AddressType: discoveryv1.AddressTypeIPv4}
	s.Labels = map[string]string{discoveryv1.LabelServiceName: w.name}
	for _, p := range w.pods {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{p.ip.String()},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: w.ns, Name: p.name, UID: types.UID(p.uid)},
		})
	}
	c.kube(watch.Modified, s, t)
}
