package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/flowscope/flowscope/internal/policy"
	"github.com/flowscope/flowscope/internal/policy/kubesource"
)

// kubeFlags read NetworkPolicies, namespace labels and named ports from a cluster.
type kubeFlags struct {
	fromCluster bool
	kubeconfig  string
	context     string
}

func (k *kubeFlags) register(fs *flag.FlagSet, what string) {
	fs.BoolVar(&k.fromCluster, "from-cluster", false, what)
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig for --from-cluster (default $KUBECONFIG, ~/.kube/config, then the in-cluster service account)")
	fs.StringVar(&k.context, "context", "", "kubeconfig context for --from-cluster (default the current one)")
}

// fill adds what the cluster holds to req: its policies (as the current ones for a what-if),
// the labels of namespaces not given in a file, and the named ports of its pods.
func (k *kubeFlags) fill(ctx context.Context, req *policy.Request, whatif bool) error {
	cfg, err := kubesource.RestConfig(k.kubeconfig, k.context)
	if err != nil {
		return err
	}
	cfg.Timeout = time.Minute
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("connecting to the Kubernetes API: %w", err)
	}
	snap, err := kubesource.Read(ctx, c)
	if err != nil {
		return err
	}
	if whatif {
		req.Current = snap.Policies
	} else {
		req.Policies = append(req.Policies, snap.Policies...)
	}
	given := map[string]bool{}
	for _, n := range req.Namespaces {
		given[n.Name] = true
	}
	for _, n := range snap.Namespaces {
		if !given[n.Name] {
			req.Namespaces = append(req.Namespaces, n)
		}
	}
	if req.NamedPorts == nil {
		req.NamedPorts = map[string]map[string]int32{}
	}
	for k, v := range snap.NamedPorts {
		req.NamedPorts[k] = v
	}
	return nil
}
