package kube

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/collector/ownership"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newTracker(t *testing.T, now *time.Time) (*Tracker, *ownership.Store) {
	t.Helper()
	clock := func() time.Time { return *now }
	s, err := ownership.New(ownership.Config{KubeLag: time.Second}, clock, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return NewTracker(Config{Cluster: "c1"}, s, clock, slog.New(slog.DiscardHandler)), s
}

func pod(ns, name, uid, ip string, owner *metav1.OwnerReference) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + uid), CreationTimestamp: metav1.NewTime(t0)}}
	if owner != nil {
		yes := true
		owner.Controller = &yes
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	p.Spec.NodeName = "n1"
	p.Status.Phase = corev1.PodRunning
	if ip != "" {
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	return p
}

func TestTrackerOwnersAndReleases(t *testing.T) {
	now := t0.Add(time.Second)
	tr, s := newTracker(t, &now)
	yes := true
	tr.Job(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "backup-2900", OwnerReferences: []metav1.OwnerReference{{Kind: "CronJob", Name: "backup", Controller: &yes}}}})
	job := pod("ops", "backup-2900-x", "1", "10.0.0.1", &metav1.OwnerReference{Kind: "Job", Name: "backup-2900"})
	ds := pod("kube-system", "agent-q", "2", "10.0.0.2", &metav1.OwnerReference{Kind: "DaemonSet", Name: "agent"})
	bare := pod("default", "debug", "3", "10.0.0.3", nil)
	host := pod("kube-system", "exporter-h", "4", "192.168.1.1", &metav1.OwnerReference{Kind: "DaemonSet", Name: "exporter"})
	host.Spec.HostNetwork = true
	host.Spec.Containers = []corev1.Container{{Name: "x", Ports: []corev1.ContainerPort{{ContainerPort: 9100}}}}
	for _, p := range []*corev1.Pod{job, ds, bare, host} {
		tr.Pod(p)
	}
	s.SetKubeSynced(t0.Add(time.Minute))
	tests := []struct {
		ip       string
		port     uint16
		workload string
	}{
		{"10.0.0.1", 0, "CronJob ops/backup"},
		{"10.0.0.2", 0, "DaemonSet kube-system/agent"},
		{"10.0.0.3", 0, "Pod default/debug"},
		{"192.168.1.1", 9100, "DaemonSet kube-system/exporter"},
		{"192.168.1.1", 0, "unattributed:no-owner"}, // never by address alone
	}
	for _, tt := range tests {
		r := s.Lookup(netip.MustParseAddr(tt.ip), tt.port, t0.Add(10*time.Second), true)
		got := r.Owner.WorkloadKind + " " + r.Owner.Namespace + "/" + r.Owner.Workload
		if r.Reason != "" {
			got = "unattributed:" + string(r.Reason)
		}
		if got != tt.workload {
			t.Errorf("%s:%d = %q, want %q", tt.ip, tt.port, got, tt.workload)
		}
	}
	// A finished pod releases its address when that is observed.
	now = t0.Add(20 * time.Second)
	job.Status.Phase = corev1.PodSucceeded
	tr.Pod(job)
	if r := s.Lookup(netip.MustParseAddr("10.0.0.1"), 0, t0.Add(25*time.Second), true); r.Reason != "gap" {
		t.Errorf("after the job finished: %+v, want gap", r)
	}
	if r := s.Lookup(netip.MustParseAddr("10.0.0.1"), 0, t0.Add(15*time.Second), true); r.Owner.Workload != "backup" {
		t.Errorf("before the job finished: %+v", r)
	}
	// An IP change closes the old address and opens the new one.
	ds.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.9"}}
	tr.Pod(ds)
	if r := s.Lookup(netip.MustParseAddr("10.0.0.2"), 0, t0.Add(25*time.Second), true); r.Reason != "gap" {
		t.Errorf("old address after the change: %+v", r)
	}
	if r := s.Lookup(netip.MustParseAddr("10.0.0.9"), 0, t0.Add(25*time.Second), true); r.Owner.Workload != "agent" {
		t.Errorf("new address: %+v", r)
	}
	tr.PodDeleted(bare)
	if tr.Len() != 2 { // the finished job and the deleted pod hold nothing
		t.Errorf("objects with claims: %d, want 2", tr.Len())
	}
}
