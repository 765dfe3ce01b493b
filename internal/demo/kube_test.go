package demo

import (
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/collector/kube/kubetest"
)

// TestAcceptanceAgainstAPIServer is the acceptance scenario driven by a real kube-apiserver
// and etcd: every pod, Service, EndpointSlice, ReplicaSet and node of the synthetic cluster is
// written to the API server as it changes (IPs handed to other workloads within a second), the
// collector learns them through real informers (their events delayed up to 10 s), and the
// exporters ship over gRPC to the real collector ingest.
func TestAcceptanceAgainstAPIServer(t *testing.T) {
	api := kubetest.Start(t)
	cfg := DefaultConfig()
	cfg.Start = time.Now().UTC().Truncate(time.Second)
	res, err := Run(t.Context(), Options{Cluster: cfg, Duration: 6 * time.Minute, Ingest: "grpc", SpoolDir: t.TempDir(), KubeClient: api.Client})
	if err != nil {
		t.Fatal(err)
	}
	checkAcceptance(t, res)
}
