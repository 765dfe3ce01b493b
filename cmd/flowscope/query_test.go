//go:build !noduckdb

package main

import (
	"bytes"
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowscope/flowscope/internal/api"
	"github.com/flowscope/flowscope/internal/store/duckdb/duckdbtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// queryServer serves the API over the fixed data set in a real embedded DuckDB.
func queryServer(t *testing.T) string {
	t.Helper()
	st := duckdbtest.Load(t)
	srv := httptest.NewServer(api.New(api.Config{Store: st, Now: func() time.Time { return duckdbtest.Now }}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type goldenCase struct {
	name string
	args []string
	code int
}

func runGolden(t *testing.T, url string, cases []goldenCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			queryOut = &out
			t.Cleanup(func() { queryOut = os.Stdout })
			args := append(append([]string(nil), tc.args...), "--server="+url)
			code := run(args, &errOut)
			got := out.String()
			if errOut.Len() > 0 {
				got += "--- stderr\n" + strings.ReplaceAll(errOut.String(), url, "SERVER")
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, errOut.String())
			}
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("output differs from %s (-want +got):\n%s", path, diff)
			}
		})
	}
}

func TestQueryCommandsGolden(t *testing.T) {
	url := queryServer(t)
	window := []string{"--from=-2h10m", "--to=-10m"}
	with := func(args ...string) []string { return append(args, window...) }
	runGolden(t, url, []goldenCase{
		{"deps_table", with("deps"), 0},
		{"deps_json", with("deps", "--namespace=ns2", "-o=json"), 0},
		{"deps_dot", with("deps", "--workload=ns0/app1", "-o=dot"), 0},
		{"deps_unknown_namespace", with("deps", "--namespace=nope"), 2},
		{"deps_reversed_range", []string{"deps", "--from=-1h", "--to=-2h"}, 2},
		{"top_bytes", with("top"), 0},
		{"top_failures_workload", with("top", "--by=failures", "--group=workload", "--limit=5"), 0},
		{"top_json", with("top", "--by=retransmits", "--limit=3", "-o=json"), 0},
		{"health_table", with("health", "--limit=8"), 0},
		{"health_json", with("health", "--limit=2", "-o=json"), 0},
		{"paths_check", []string{"paths", "check", "--expect=testdata/expect.yaml", "--from=-70m", "--to=-10m"}, 0},
		{"paths_check_json", []string{"paths", "check", "--from=-70m", "--to=-10m", "--baseline-from=-130m", "--baseline-to=-70m", "-o=json"}, 0},
		{"paths_bad_expect", with("paths", "check", "--expect=testdata/bad-expect.yaml"), 1},
		{"policy_audit", with("policy", "audit", "--allow=testdata/allow.yaml", "-f=testdata/ns1-lockdown.yaml", "--namespace-labels=testdata/namespaces.yaml", "--limit=12"), 0},
		{"policy_audit_json", with("policy", "audit", "--allow=testdata/allow.yaml", "--namespace=ns2", "-o=json"), 0},
		{"policy_recommend", with("policy", "recommend", "--namespace=ns1"), 0},
		{"policy_recommend_json", with("policy", "recommend", "--namespace=ns0", "-o=json"), 0},
		{"policy_whatif", with("policy", "whatif", "-f=testdata/ns1-lockdown.yaml", "--namespace-labels=testdata/namespaces.yaml"), 0},
		{"policy_whatif_json", with("policy", "whatif", "-f=testdata/ns1-lockdown.yaml", "-o=json", "--namespace=ns2"), 0},
		{"policy_bad_file", with("policy", "whatif", "-f=testdata/bad-policy.yaml"), 1},
		{"policy_audit_named_port", with("policy", "audit", "-f=testdata/app1-named-port.yaml", "--pods=testdata/pods.yaml", "--namespace-labels=testdata/namespaces.yaml", "--namespace=ns1"), 0},
		{"policy_audit_named_port_unresolved", with("policy", "audit", "-f=testdata/app1-named-port.yaml", "--namespace-labels=testdata/namespaces.yaml", "--namespace=ns1"), 0},
		{"policy_bad_pods", with("policy", "audit", "-f=testdata/app1-named-port.yaml", "--pods=testdata/bad-pods.yaml"), 1},
	})
}
