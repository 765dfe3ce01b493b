package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/flowscope/flowscope/internal/pathways"
	"github.com/flowscope/flowscope/internal/policy"
	"github.com/flowscope/flowscope/internal/specfile"
	"github.com/flowscope/flowscope/internal/store"
)

const maxBody = 16 << 20

// postRoutes are the pathway and policy routes; most take a JSON body.
func (s *server) postRoutes() map[string]func(*http.Request, *params) (any, error) {
	return map[string]func(*http.Request, *params) (any, error){
		"POST /api/v1/paths/check":     s.pathsCheck,
		"POST /api/v1/policy/audit":    s.policyAudit,
		"GET /api/v1/policy/recommend": s.policyRecommend,
		"POST /api/v1/policy/whatif":   s.policyWhatIf,
	}
}

// decodeBody reads a JSON body strictly into v.
func decodeBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return badf("reading body: %v", err)
	}
	if len(body) > maxBody {
		return badf("body larger than %d bytes", maxBody)
	}
	if len(body) == 0 {
		return badf("this route needs a JSON body (see docs/api.md)")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return badf("malformed JSON body at byte %d: %v", se.Offset, err)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return badf("malformed JSON body: it ends too early")
		}
		return badf("bad body: %v", err)
	}
	return nil
}

// PathsRequest is the body of /api/v1/paths/check.
type PathsRequest struct {
	Expect       []specfile.Path `json:"expect"`
	BaselineFrom string          `json:"baseline_from,omitempty"`
	BaselineTo   string          `json:"baseline_to,omitempty"`
}

func (s *server) pathsCheck(r *http.Request, p *params) (any, error) {
	var req PathsRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	for i, e := range req.Expect {
		if e.From == "" || e.To == "" || e.Port == 0 {
			return nil, badf("expect[%d] needs from, to and port", i)
		}
	}
	now := s.cfg.Now()
	base := store.Range{}
	var err error
	if base.To, err = parseTime(req.BaselineTo, now, p.From); err != nil {
		return nil, badf("bad baseline_to: %v", err)
	}
	if base.From, err = parseTime(req.BaselineFrom, now, base.To.Add(-p.To.Sub(p.From))); err != nil {
		return nil, badf("bad baseline_from: %v", err)
	}
	if err := base.Validate(s.cfg.MaxRange); err != nil {
		return nil, badf("baseline: %v", err)
	}
	return pathways.Check(r.Context(), s.cfg.Store, p.Range, base, req.Expect)
}

func (s *server) policyRequest(r *http.Request) (policy.Request, error) {
	var req policy.Request
	if err := decodeBody(r, &req); err != nil {
		return req, err
	}
	for field, list := range map[string][]networkingv1.NetworkPolicy{"policies": req.Policies, "current": req.Current} {
		for i := range list {
			pol := &list[i]
			if pol.Namespace == "" {
				pol.Namespace = "default"
			}
			if err := policy.Validate(pol); err != nil {
				return req, badf("%s[%d] %s/%s: %v", field, i, pol.Namespace, pol.Name, err)
			}
		}
	}
	return req, nil
}

// AuditResult is the answer of /api/v1/policy/audit.
type AuditResult struct {
	From       time.Time          `json:"from"`
	To         time.Time          `json:"to"`
	Total      int                `json:"total"` // violations before limit
	Violations []policy.Violation `json:"violations"`
}

func (s *server) policyAudit(r *http.Request, p *params) (any, error) {
	req, err := s.policyRequest(r)
	if err != nil {
		return nil, err
	}
	if req.Allow == nil && len(req.Policies) == 0 {
		return nil, badf("audit needs an allow-list, NetworkPolicies or both")
	}
	groups, err := s.cfg.Store.FlowGroups(r.Context(), p.Range, p.namespaces)
	if err != nil {
		return nil, err
	}
	v, err := policy.Audit(groups, req)
	if err != nil {
		return nil, badRequest{err.Error()}
	}
	return AuditResult{From: p.From, To: p.To, Total: len(v), Violations: p.truncate(v)}, nil
}

// RecommendResult is the answer of /api/v1/policy/recommend.
type RecommendResult struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	policy.Recommendation
}

func (s *server) policyRecommend(r *http.Request, p *params) (any, error) {
	groups, err := s.cfg.Store.FlowGroups(r.Context(), p.Range, p.namespaces)
	if err != nil {
		return nil, err
	}
	return RecommendResult{From: p.From, To: p.To, Recommendation: policy.Recommend(groups, p.namespaces)}, nil
}

// WhatIfResult is the answer of /api/v1/policy/whatif.
type WhatIfResult struct {
	From         time.Time          `json:"from"`
	To           time.Time          `json:"to"`
	Total        int                `json:"total"` // blocked groups before limit
	Blocked      []policy.Violation `json:"blocked"`
	AllowedFlows uint64             `json:"allowed_flows"`
	// AlreadyBlockedFlows are flows the current policies (request field current) deny already.
	AlreadyBlockedFlows uint64 `json:"already_blocked_flows,omitempty"`
}

func (s *server) policyWhatIf(r *http.Request, p *params) (any, error) {
	req, err := s.policyRequest(r)
	if err != nil {
		return nil, err
	}
	if len(req.Policies) == 0 {
		return nil, badf("whatif needs policies")
	}
	groups, err := s.cfg.Store.FlowGroups(r.Context(), p.Range, p.namespaces)
	if err != nil {
		return nil, err
	}
	blocked, allowed, already, err := policy.WhatIf(groups, req)
	if err != nil {
		return nil, badRequest{err.Error()}
	}
	return WhatIfResult{From: p.From, To: p.To, Total: len(blocked), Blocked: p.truncate(blocked), AllowedFlows: allowed, AlreadyBlockedFlows: already}, nil
}

func (p *params) truncate(v []policy.Violation) []policy.Violation {
	if p.limit > 0 && len(v) > p.limit {
		return v[:p.limit]
	}
	return v
}
