// Package kubesource reads from a cluster's Kubernetes API what NetworkPolicy evaluation needs:
// the NetworkPolicies, the labels of namespaces (for namespaceSelectors) and the named
// container ports of pods (for named ports), with plain List calls.
package kubesource

import (
	"context"
	"fmt"
	"sort"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flowscope/flowscope/internal/policy"
)

// RestConfig returns the client configuration of a kubeconfig file: path, or when empty
// $KUBECONFIG or ~/.kube/config, and the in-cluster service account when none of them exists.
// context selects a kubeconfig context ("" for the current one).
func RestConfig(path, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the Kubernetes client configuration: %w", err)
	}
	cfg.UserAgent = "flowscope-policy"
	return cfg, nil
}

// Snapshot is what Read found in the cluster.
type Snapshot struct {
	Policies   []networkingv1.NetworkPolicy
	Namespaces []policy.Namespace
	// NamedPorts maps each pod ("namespace/pod/name", policy.PodKey) to its TCP container
	// ports by name.
	NamedPorts map[string]map[string]int32
}

// pageSize bounds each List answer; large clusters are read in pages.
var pageSize int64 = 500

// Read lists every NetworkPolicy, Namespace and Pod of the cluster (pods only for their named
// TCP container ports). Policies come back sorted by namespace and name.
func Read(ctx context.Context, c kubernetes.Interface) (Snapshot, error) {
	s := Snapshot{NamedPorts: map[string]map[string]int32{}}
	err := eachPage(ctx, "NetworkPolicies", func(opts metav1.ListOptions) (string, error) {
		l, err := c.NetworkingV1().NetworkPolicies("").List(ctx, opts)
		if err != nil {
			return "", err
		}
		for _, p := range l.Items {
			p.ManagedFields = nil
			s.Policies = append(s.Policies, p)
		}
		return l.Continue, nil
	})
	if err != nil {
		return s, err
	}
	err = eachPage(ctx, "Namespaces", func(opts metav1.ListOptions) (string, error) {
		l, err := c.CoreV1().Namespaces().List(ctx, opts)
		if err != nil {
			return "", err
		}
		for _, n := range l.Items {
			s.Namespaces = append(s.Namespaces, policy.Namespace{Name: n.Name, Labels: n.Labels})
		}
		return l.Continue, nil
	})
	if err != nil {
		return s, err
	}
	err = eachPage(ctx, "Pods", func(opts metav1.ListOptions) (string, error) {
		l, err := c.CoreV1().Pods("").List(ctx, opts)
		if err != nil {
			return "", err
		}
		for i := range l.Items {
			if ports := policy.PodNamedPorts(&l.Items[i]); len(ports) > 0 {
				s.NamedPorts[policy.PodKey(l.Items[i].Namespace, l.Items[i].Name)] = ports
			}
		}
		return l.Continue, nil
	})
	if err != nil {
		return s, err
	}
	sort.Slice(s.Policies, func(i, j int) bool {
		a, b := s.Policies[i], s.Policies[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return s, nil
}

// eachPage calls list with a continue token until the API says there is no more.
func eachPage(ctx context.Context, what string, list func(metav1.ListOptions) (string, error)) error {
	opts := metav1.ListOptions{Limit: pageSize}
	for {
		next, err := list(opts)
		if err != nil {
			return fmt.Errorf("listing %s from the Kubernetes API: %w", what, err)
		}
		if next == "" {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		opts.Continue = next
	}
}
