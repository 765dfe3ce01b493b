package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLabelsFlag: --labels names the pod label keys the Kubernetes source keeps in owners;
// a key Kubernetes would refuse is a usage error that names it.
func TestLabelsFlag(t *testing.T) {
	parse := func(args ...string) (*pipelineFlags, error) {
		var f pipelineFlags
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		f.bind(fs)
		return &f, fs.Parse(args)
	}
	f, err := parse("--cluster=prod", "--labels=app, team,app.kubernetes.io/name,,app")
	if err != nil {
		t.Fatal(err)
	}
	got := f.kubeConfig()
	if diff := cmp.Diff([]string{"app", "team", "app.kubernetes.io/name"}, got.Labels); diff != "" || got.Cluster != "prod" {
		t.Errorf("kube config %+v (labels -want +got):\n%s", got, diff)
	}
	if f, err = parse(); err != nil || f.kubeConfig().Labels != nil {
		t.Errorf("without --labels: %v, %v", f.kubeConfig().Labels, err)
	}
	for _, bad := range []string{"team name", "-app", "a/b/c", strings.Repeat("x", 64)} {
		if _, err := parse("--labels=app," + bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("--labels=app,%s: %v", bad, err)
		}
	}
}
