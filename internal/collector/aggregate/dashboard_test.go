package aggregate

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/testgate"
)

// TestDashboardQueriesOnRealPrometheus scrapes the edge metrics with a real Prometheus and runs
// every query of the Grafana dashboard against it.
func TestDashboardQueriesOnRealPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		testgate.Services(t, "prometheus is not installed (.ci/packages/store.txt installs it)")
	}
	reg := prometheus.NewRegistry()
	m := NewEdgeMetrics(reg, 100)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(target.Close)

	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs:\n- job_name: flowscope\n  static_configs: [{targets: [%q]}]\n", strings.TrimPrefix(target.URL, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// Traffic between scrapes so that rates are defined.
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		batch := []flow.Conn{conn("a", t0, false, flow.OK, 1000), conn("b", t0, false, flow.Refused, 0)}
		batch[1].Client.Workload = "cron"
		m.Observe(batch)
		if i > 8 && len(query(t, addr, `sum(rate(flowscope_edge_connections_total[5s]))`)) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("prometheus did not scrape the edge metrics within 60s")
		}
		time.Sleep(500 * time.Millisecond)
	}

	data, err := os.ReadFile("../../../deploy/grafana/flowscope-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	r := strings.NewReplacer("$__rate_interval", "10s", "$src", ".*", "$dst", ".*")
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			n++
			res := query(t, addr, r.Replace(tg.Expr))
			if strings.Contains(tg.Expr, "flowscope_edge_") && len(res) == 0 {
				t.Errorf("panel %q: query %s returned nothing", p.Title, tg.Expr)
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d queries in the dashboard", n)
	}
}

// query runs an instant query and returns its result vector; a query error fails the test.
func query(t *testing.T, addr, q string) []json.RawMessage {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil // not up yet
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Error  string
		Data   struct{ Result []json.RawMessage }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	if body.Status != "success" {
		if resp.StatusCode == http.StatusServiceUnavailable {
			return nil
		}
		t.Fatalf("query %s: %s %s", q, body.Status, body.Error)
	}
	return body.Data.Result
}
