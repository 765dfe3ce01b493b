// Package api serves flowscope's versioned JSON API (/api/v1/...): the dependency graph, top
// talkers, health, pathway checks, segmentation answers, and edge and workload details, over a
// store. docs/api.md is its contract.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flowscope/flowscope/internal/depgraph"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/health"
	"github.com/flowscope/flowscope/internal/store"
)

// Config configures the handler.
type Config struct {
	Store        store.Querier
	Now          func() time.Time
	MaxRange     time.Duration // longest accepted time range; default 31 days
	DefaultRange time.Duration // range when from is absent; default 1 hour
	MaxLimit     int           // largest accepted limit; default 10000
	Logger       *slog.Logger
}

type server struct {
	cfg Config
	log *slog.Logger
}

// New returns the handler of every /api/v1/ route.
func New(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxRange <= 0 {
		cfg.MaxRange = 31 * 24 * time.Hour
	}
	if cfg.DefaultRange <= 0 {
		cfg.DefaultRange = time.Hour
	}
	if cfg.MaxLimit <= 0 {
		cfg.MaxLimit = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{cfg: cfg, log: cfg.Logger.With("component", "api")}
	mux := http.NewServeMux()
	routes := map[string]func(*http.Request, *params) (any, error){
		"GET /api/v1/deps":         s.deps,
		"GET /api/v1/top":          s.top,
		"GET /api/v1/health":       s.health,
		"GET /api/v1/edge":         s.edge,
		"GET /api/v1/workload":     s.workload,
		"GET /api/v1/nodes":        s.nodes,
		"GET /api/v1/unattributed": s.unattributed,
		"GET /api/v1/status":       s.status,
	}
	for pattern, h := range routes {
		mux.Handle(pattern, s.wrap(h))
	}
	for pattern, h := range s.postRoutes() {
		mux.Handle(pattern, s.wrap(h))
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no such API route: " + r.Method + " " + r.URL.Path})
	})
	return mux
}

type errorBody struct {
	Error string `json:"error"`
}

// badRequest is an error in the request: HTTP 400 with its message.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return badRequest{fmt.Sprintf(format, args...)} }

func (s *server) wrap(h func(*http.Request, *params) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.parse(r)
		var out any
		if err == nil {
			out, err = h(r, p)
		}
		var br badRequest
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, out)
		case errors.As(err, &br):
			writeJSON(w, http.StatusBadRequest, errorBody{Error: br.msg})
		case errors.Is(err, store.ErrNotFound):
			writeJSON(w, http.StatusNotFound, errorBody{Error: err.Error()})
		case errors.Is(err, context.Canceled):
			writeJSON(w, 499, errorBody{Error: "request cancelled"})
		default:
			s.log.Error("request failed", "path", r.URL.Path, "err", err)
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
		}
	})
}

// streamer is an answer that encodes itself as JSON onto the response, piece by piece.
type streamer interface {
	WriteJSON(w io.Writer) error
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if s, ok := v.(streamer); ok {
		if s.WriteJSON(w) == nil {
			_, _ = w.Write([]byte{'\n'})
		}
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

// params are the query parameters shared by the routes.
type params struct {
	store.Range
	q          url.Values
	namespaces []string
	workload   string
	limit      int
}

var known = map[string]bool{"from": true, "to": true, "namespace": true, "workload": true, "limit": true,
	"by": true, "group": true, "src": true, "dst": true, "port": true, "service": true, "direction": true, "id": true,
	"step": true, "baseline_from": true, "baseline_to": true, "rtt": true}

func (s *server) parse(r *http.Request) (*params, error) {
	q := r.URL.Query()
	for k := range q {
		if !known[k] {
			return nil, badf("unknown parameter %q", k)
		}
	}
	p := &params{q: q}
	now := s.cfg.Now()
	var err error
	if p.To, err = parseTime(q.Get("to"), now, now); err != nil {
		return nil, badf("bad to: %v", err)
	}
	if p.From, err = parseTime(q.Get("from"), now, p.To.Add(-s.cfg.DefaultRange)); err != nil {
		return nil, badf("bad from: %v", err)
	}
	if err := p.Range.Validate(s.cfg.MaxRange); err != nil {
		return nil, badRequest{err.Error()}
	}
	if err := s.parseFilters(r.Context(), p); err != nil {
		return nil, err
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > s.cfg.MaxLimit {
			return nil, badf("bad limit %q: want an integer from 1 to %d", v, s.cfg.MaxLimit)
		}
		p.limit = n
	}
	return p, nil
}

func (s *server) parseFilters(ctx context.Context, p *params) error {
	for _, v := range p.q["namespace"] {
		for ns := range strings.SplitSeq(v, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				p.namespaces = append(p.namespaces, ns)
			}
		}
	}
	p.workload = p.q.Get("workload")
	if len(p.namespaces) == 0 && p.workload == "" {
		return nil
	}
	nodes, err := s.cfg.Store.Nodes(ctx)
	if err != nil {
		return err
	}
	nss, ids := map[string]bool{}, map[string]bool{}
	for _, n := range nodes {
		nss[n.Namespace], ids[n.ID] = true, true
	}
	for _, ns := range p.namespaces {
		if !nss[ns] {
			return badf("unknown namespace %q: no flows were seen in it", ns)
		}
	}
	if p.workload != "" && !ids[p.workload] {
		return badf("unknown workload %q (ids look like namespace/name, namespace/svc/name, network/name)", p.workload)
	}
	return nil
}

// parseTime accepts RFC 3339, Unix seconds, "now" or a negative duration relative to now
// ("-15m"); empty gives def.
func parseTime(v string, now, def time.Time) (time.Time, error) {
	switch {
	case v == "":
		return def, nil
	case v == "now":
		return now, nil
	case strings.HasPrefix(v, "-"):
		d, err := time.ParseDuration(v[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not a duration like -15m", v)
		}
		return now.Add(-d), nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not RFC 3339, Unix seconds, now or -duration", v)
	}
	return t.UTC(), nil
}

func (p *params) edgeQuery() store.EdgeQuery {
	return store.EdgeQuery{Range: p.Range, Namespaces: p.namespaces, Workload: p.workload, Limit: p.limit}
}

func (p *params) order(def store.Order) (store.Order, error) {
	o := store.Order(p.q.Get("by"))
	if o == "" {
		return def, nil
	}
	if !store.ValidOrder(o) {
		return "", badf("bad by %q: want bytes, connections, failures or retransmits", o)
	}
	return o, nil
}

func (s *server) deps(r *http.Request, p *params) (any, error) {
	q := p.edgeQuery()
	q.WithRTT = p.q.Get("rtt") == "1" // the console colours edges by RTT too
	g, err := depgraph.Deps(r.Context(), s.cfg.Store, q)
	if err != nil {
		return nil, err
	}
	return g, nil
}

func (s *server) top(r *http.Request, p *params) (any, error) {
	q := p.edgeQuery()
	var err error
	if q.Order, err = p.order(store.ByBytes); err != nil {
		return nil, err
	}
	g := depgraph.Grouping(p.q.Get("group"))
	if g != "" && g != depgraph.ByEdge && g != depgraph.ByWorkload {
		return nil, badf("bad group %q: want edge or workload", g)
	}
	return depgraph.Top(r.Context(), s.cfg.Store, q, g)
}

func (s *server) health(r *http.Request, p *params) (any, error) {
	q := p.edgeQuery()
	var err error
	if q.Order, err = p.order(store.ByFailures); err != nil {
		return nil, err
	}
	return health.Build(r.Context(), s.cfg.Store, q)
}

// EdgeDetail is the answer of /api/v1/edge.
type EdgeDetail struct {
	Edge   depgraph.Edge `json:"edge"`
	Series []store.Point `json:"series"`
	Flows  []flow.Conn   `json:"flows"`
}

func (s *server) edgeKey(p *params) (store.EdgeKey, error) {
	k := store.EdgeKey{Src: p.q.Get("src"), Dst: p.q.Get("dst"), Service: p.q.Get("service"), Direction: store.Internal}
	if k.Src == "" || k.Dst == "" {
		return k, badf("edge needs src and dst")
	}
	port, err := strconv.ParseUint(p.q.Get("port"), 10, 16)
	if err != nil {
		return k, badf("bad port %q", p.q.Get("port"))
	}
	k.Port = uint16(port)
	if d := p.q.Get("direction"); d != "" {
		if err := k.Direction.UnmarshalText([]byte(d)); err != nil {
			return k, badRequest{err.Error()}
		}
	}
	return k, nil
}

func (s *server) edge(r *http.Request, p *params) (any, error) {
	k, err := s.edgeKey(p)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	edges, err := s.cfg.Store.Edges(ctx, store.EdgeQuery{Range: p.Range, Workload: k.Src, Directions: []store.Direction{k.Direction}, WithRTT: true})
	if err != nil {
		return nil, err
	}
	var d EdgeDetail
	found := false
	for _, e := range edges {
		if e.EdgeKey == k {
			d.Edge, found = depgraph.NewEdge(e), true
		}
	}
	if !found {
		return nil, fmt.Errorf("edge %s in this range: %w", k, store.ErrNotFound)
	}
	step := time.Minute
	if p.To.Sub(p.From) > 6*time.Hour {
		step = time.Hour
	}
	if d.Series, err = s.cfg.Store.EdgeSeries(ctx, k, p.Range, step); err != nil {
		return nil, err
	}
	limit := p.limit
	if limit == 0 {
		limit = 50
	}
	flows, err := s.cfg.Store.Flows(ctx, store.FlowQuery{Range: p.Range, Edge: &k, Limit: limit})
	if err != nil {
		return nil, err
	}
	d.Flows = flows
	if d.Flows == nil {
		d.Flows = []flow.Conn{}
	}
	return d, nil
}

// WorkloadDetail is the answer of /api/v1/workload.
type WorkloadDetail struct {
	Node store.Node      `json:"node"`
	Out  []depgraph.Edge `json:"out"`
	In   []depgraph.Edge `json:"in"`
}

func (s *server) workload(r *http.Request, p *params) (any, error) {
	id := p.q.Get("id")
	if id == "" {
		return nil, badf("workload needs id")
	}
	nodes, err := s.cfg.Store.Nodes(r.Context())
	if err != nil {
		return nil, err
	}
	d := WorkloadDetail{Out: []depgraph.Edge{}, In: []depgraph.Edge{}}
	found := false
	for _, n := range nodes {
		if n.ID == id {
			d.Node, found = n, true
		}
	}
	if !found {
		return nil, badf("unknown workload %q", id)
	}
	edges, err := s.cfg.Store.Edges(r.Context(), store.EdgeQuery{Range: p.Range, Workload: id, WithRTT: true})
	if err != nil {
		return nil, err
	}
	for _, e := range edges {
		if e.Src == id {
			d.Out = append(d.Out, depgraph.NewEdge(e))
		}
		if e.Dst == id || e.Service == id {
			d.In = append(d.In, depgraph.NewEdge(e))
		}
	}
	return d, nil
}

// NodeList is the answer of /api/v1/nodes.
type NodeList struct {
	Namespaces []string     `json:"namespaces"`
	Nodes      []store.Node `json:"nodes"`
}

func (s *server) nodes(r *http.Request, _ *params) (any, error) {
	nodes, err := s.cfg.Store.Nodes(r.Context())
	if err != nil {
		return nil, err
	}
	out := NodeList{Namespaces: []string{}, Nodes: nodes}
	seen := map[string]bool{}
	for _, n := range nodes {
		if n.Namespace != "" && !seen[n.Namespace] {
			seen[n.Namespace] = true
			out.Namespaces = append(out.Namespaces, n.Namespace)
		}
	}
	sort.Strings(out.Namespaces)
	sort.Slice(out.Nodes, func(i, j int) bool { return out.Nodes[i].ID < out.Nodes[j].ID })
	return out, nil
}

// UnattributedSummary is the answer of /api/v1/unattributed.
type UnattributedSummary struct {
	From    time.Time           `json:"from"`
	To      time.Time           `json:"to"`
	Reasons []store.ReasonCount `json:"reasons"`
}

func (s *server) unattributed(r *http.Request, p *params) (any, error) {
	rc, err := s.cfg.Store.Unattributed(r.Context(), p.Range)
	if err != nil {
		return nil, err
	}
	if rc == nil {
		rc = []store.ReasonCount{}
	}
	sort.Slice(rc, func(i, j int) bool {
		if rc[i].Flows != rc[j].Flows {
			return rc[i].Flows > rc[j].Flows
		}
		return rc[i].Side+string(rc[i].Reason) < rc[j].Side+string(rc[j].Reason)
	})
	return UnattributedSummary{From: p.From, To: p.To, Reasons: rc}, nil
}

// Status is the answer of /api/v1/status.
type Status struct {
	APIVersion int            `json:"api_version"`
	Coverage   store.Coverage `json:"coverage"`
}

func (s *server) status(r *http.Request, _ *params) (any, error) {
	c, err := s.cfg.Store.Coverage(r.Context())
	return Status{APIVersion: 1, Coverage: c}, err
}
