package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/api"
	"github.com/flowscope/flowscope/internal/depgraph"
	"github.com/flowscope/flowscope/internal/store/duckdb/duckdbtest"
)

func server(t *testing.T) *httptest.Server {
	t.Helper()
	st := duckdbtest.Load(t)
	srv := httptest.NewServer(api.New(api.Config{Store: st, Now: func() time.Time { return duckdbtest.Now }}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 1<<16)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, []byte(b.String())
}

func TestBadParametersAre400(t *testing.T) {
	srv := server(t)
	tests := []struct{ path, want string }{
		{"/api/v1/deps?from=2026-03-02T12:00:00Z&to=2026-03-02T10:00:00Z", "reversed"},
		{"/api/v1/deps?from=2020-01-01T00:00:00Z&to=2026-03-02T10:00:00Z", "exceeds the maximum"},
		{"/api/v1/deps?namespace=nope", `unknown namespace "nope"`},
		{"/api/v1/deps?workload=ns0/ghost", `unknown workload`},
		{"/api/v1/deps?from=yesterday", "bad from"},
		{"/api/v1/top?by=vibes", "bad by"},
		{"/api/v1/top?group=pods", "bad group"},
		{"/api/v1/top?limit=0", "bad limit"},
		{"/api/v1/top?limit=99999999", "bad limit"},
		{"/api/v1/deps?colour=blue", `unknown parameter "colour"`},
		{"/api/v1/edge?src=ns0/app0", "needs src and dst"},
		{"/api/v1/edge?src=ns0/app0&dst=ns0/app1&port=http", "bad port"},
	}
	for _, tc := range tests {
		code, body := get(t, srv, tc.path)
		var e struct{ Error string }
		_ = json.Unmarshal(body, &e)
		if code != http.StatusBadRequest || !strings.Contains(e.Error, tc.want) {
			t.Errorf("GET %s = %d %s, want 400 containing %q", tc.path, code, body, tc.want)
		}
	}
}

func TestDepsAndTopAnswer(t *testing.T) {
	srv := server(t)
	code, body := get(t, srv, "/api/v1/deps?from=-2h10m&namespace=ns1")
	if code != http.StatusOK {
		t.Fatalf("deps: %d %s", code, body)
	}
	var g depgraph.Graph
	if err := json.Unmarshal(body, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Edges) == 0 || len(g.Nodes) == 0 {
		t.Fatalf("empty graph: %s", body)
	}
	if g.Edges[0].RTTp99us != 0 {
		t.Errorf("deps without rtt=1 has RTT: %+v", g.Edges[0])
	}
	_, body = get(t, srv, "/api/v1/deps?from=-2h10m&namespace=ns1&rtt=1")
	if err := json.Unmarshal(body, &g); err != nil || g.Edges[0].RTTp99us == 0 {
		t.Errorf("deps with rtt=1 has no RTT (%v): %.200s", err, body)
	}
	code, body = get(t, srv, "/api/v1/top?from=-2h10m&by=failures&limit=3")
	var top depgraph.TopResult
	if err := json.Unmarshal(body, &top); code != 200 || err != nil || len(top.Rows) != 3 {
		t.Fatalf("top: %d %s %v", code, body, err)
	}
	if code, body = get(t, srv, "/api/v1/nope"); code != http.StatusNotFound {
		t.Errorf("unknown route: %d %s", code, body)
	}
}

func TestBadBodiesAre400(t *testing.T) {
	srv := server(t)
	tests := []struct{ path, body, want string }{
		{"/api/v1/paths/check", `{"expect": [`, "malformed JSON body"},
		{"/api/v1/paths/check", `{"expect": [{"from": "a/b", "to": "c/d"}]}`, "needs from, to and port"},
		{"/api/v1/paths/check", `{"expectations": []}`, `unknown field "expectations"`},
		{"/api/v1/paths/check", ``, "needs a JSON body"},
		{"/api/v1/paths/check", `{"expect": [], "baseline_from": "2026-03-02T12:00:00Z", "baseline_to": "2026-03-02T11:00:00Z"}`, "baseline: time range reversed"},
		{"/api/v1/policy/whatif", `{}`, "whatif needs policies"},
		{"/api/v1/policy/audit", `{}`, "needs an allow-list"},
		{"/api/v1/policy/audit", `{"policies": [{"metadata": {"name": "x"}, "spec": {"podSelector": {}, "policyTypes": ["Sideways"]}}]}`, "policies[0] default/x: policyTypes"},
	}
	for _, tc := range tests {
		resp, err := http.Post(srv.URL+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error, tc.want) {
			t.Errorf("POST %s %s = %d %q, want 400 containing %q", tc.path, tc.body, resp.StatusCode, e.Error, tc.want)
		}
	}
}

func TestDetailRoutes(t *testing.T) {
	srv := server(t)
	var top depgraph.TopResult
	_, body := get(t, srv, "/api/v1/top?from=-2h10m&limit=1")
	if err := json.Unmarshal(body, &top); err != nil || len(top.Rows) != 1 {
		t.Fatalf("top: %s %v", body, err)
	}
	k := top.Rows[0].Edge
	q := url.Values{"from": {"-2h10m"}, "src": {k.Src}, "dst": {k.Dst}, "port": {fmt.Sprint(k.Port)}, "service": {k.Service}, "direction": {k.Direction.String()}, "limit": {"3"}}
	code, body := get(t, srv, "/api/v1/edge?"+q.Encode())
	var d api.EdgeDetail
	if err := json.Unmarshal(body, &d); code != 200 || err != nil {
		t.Fatalf("edge: %d %s %v", code, body, err)
	}
	if d.Edge.EdgeKey != *k || len(d.Flows) != 3 || len(d.Series) < 60 || d.Edge.RTTp99us == 0 {
		t.Errorf("edge detail: key %v, %d flows, %d points, p99 %d", d.Edge.EdgeKey, len(d.Flows), len(d.Series), d.Edge.RTTp99us)
	}
	q.Set("port", "1")
	if code, body = get(t, srv, "/api/v1/edge?"+q.Encode()); code != http.StatusNotFound {
		t.Errorf("edge without data: %d %s", code, body)
	}
	code, body = get(t, srv, "/api/v1/workload?from=-2h10m&id="+url.QueryEscape(k.Src))
	var w api.WorkloadDetail
	if err := json.Unmarshal(body, &w); code != 200 || err != nil || len(w.Out) == 0 || w.Node.ID != k.Src {
		t.Errorf("workload: %d %s %v", code, body, err)
	}
	code, body = get(t, srv, "/api/v1/unattributed?from=-2h10m")
	var u api.UnattributedSummary
	if err := json.Unmarshal(body, &u); code != 200 || err != nil || len(u.Reasons) != 3 {
		t.Errorf("unattributed: %d %s %v", code, body, err)
	}
	code, body = get(t, srv, "/api/v1/nodes")
	var n api.NodeList
	if err := json.Unmarshal(body, &n); code != 200 || err != nil || len(n.Namespaces) != 3 {
		t.Errorf("nodes: %d %s %v", code, body, err)
	}
	code, body = get(t, srv, "/api/v1/status")
	var s api.Status
	if err := json.Unmarshal(body, &s); code != 200 || err != nil || s.APIVersion != 1 || s.Coverage.Latest.IsZero() {
		t.Errorf("status: %d %s %v", code, body, err)
	}
}
