package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flowscope/flowscope/internal/collector/kube"
	"github.com/flowscope/flowscope/internal/store"
)

// pipelineFlags are the collector's flags beyond the ingest's: where it stores, what it
// serves, and where ownership comes from besides the exporters.
type pipelineFlags struct {
	dataDir, listen, networks, kubeconfig, cluster, memory string
	inCluster, pprof                                       bool
	window                                                 time.Duration
	retention                                              retentionFlag
	labels                                                 labelsFlag
}

func (f *pipelineFlags) bind(fs interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
	DurationVar(*time.Duration, string, time.Duration, string)
	Var(flag.Value, string, string)
}) {
	fs.StringVar(&f.dataDir, "data-dir", "flowscope-data", "data directory of the store (and of the spool unless --spool-dir is given), with --output=store")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:7480", "address of the API, the console and /metrics, with --output=store")
	fs.StringVar(&f.networks, "networks", "", "YAML file of named CIDRs (cloud services, on-premises networks); reloaded when it changes")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster whose Pods, Services, EndpointSlices and Nodes name addresses")
	fs.BoolVar(&f.inCluster, "kube-in-cluster", false, "read the Kubernetes API with the pod's service account")
	fs.StringVar(&f.cluster, "cluster", "", "cluster name given to the Kubernetes workloads")
	fs.Var(&f.labels, "labels", "pod label keys kept in workload identities and written with each flow's ends, comma-separated (e.g. app,team,app.kubernetes.io/name)")
	fs.StringVar(&f.memory, "store-memory", "1GB", "DuckDB memory limit")
	fs.DurationVar(&f.window, "holding-window", time.Minute, "how long a flow waits for ownership covering its start before it is attributed or marked unattributed")
	fs.BoolVar(&f.pprof, "pprof", false, "serve Go's profiles under /debug/pprof/ on --listen")
	f.retention.bind(fs)
}

// kubeConfig is how the Kubernetes source names workloads.
func (f *pipelineFlags) kubeConfig() kube.Config {
	return kube.Config{Cluster: f.cluster, Labels: f.labels.keys}
}

// labelsFlag is --labels: the pod label keys owners carry, each a valid Kubernetes label key.
type labelsFlag struct{ keys []string }

func (v *labelsFlag) String() string {
	if v == nil {
		return ""
	}
	return strings.Join(v.keys, ",")
}

func (v *labelsFlag) Set(s string) error {
	var keys []string
	for k := range strings.SplitSeq(s, ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("label key %q: %s", k, strings.Join(errs, "; "))
		}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	v.keys = keys
	return nil
}

// retentionFlag is --retention: how long each level of the store is kept.
type retentionFlag struct{ r store.Retention }

func (v *retentionFlag) bind(fs interface {
	Var(flag.Value, string, string)
}) {
	v.r = store.DefaultRetention
	fs.Var(v, "retention", "how long the store keeps each level, e.g. raw=48h,minute=14d,hour=180d")
}

func (v *retentionFlag) String() string {
	if v == nil {
		return ""
	}
	return "raw=" + v.r.Raw.String() + ",minute=" + v.r.Minute.String() + ",hour=" + v.r.Hour.String()
}

func (v *retentionFlag) Set(s string) error {
	r, err := store.ParseRetention(s)
	if err != nil {
		return err
	}
	v.r = r
	return nil
}
