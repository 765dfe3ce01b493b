package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 12, 0, 0, time.UTC)
	h := Handler(func() Settings {
		return Settings{Mode: "demo", Events: []Event{{At: at, What: "x fails"}}}
	})
	cases := []struct {
		path, wantType, wantBody, wantCache string
	}{
		{"/", "text/html", `<div id="graph">`, "no-cache"},
		{"/?view=pathways&range=5m", "text/html", `<div id="graph">`, "no-cache"},
		{"/some/deep/link", "text/html", `<div id="graph">`, "no-cache"},
		{"/assets/app.js", "text/javascript", "", "immutable"},
		{"/console/settings.json", "application/json", `"mode":"demo"`, "no-store"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.path, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, c.wantType) {
				t.Errorf("Content-Type %q, want %s", ct, c.wantType)
			}
			if !strings.Contains(rec.Header().Get("Cache-Control"), c.wantCache) {
				t.Errorf("Cache-Control %q, want %s", rec.Header().Get("Cache-Control"), c.wantCache)
			}
			if !strings.Contains(rec.Body.String(), c.wantBody) {
				t.Errorf("body lacks %q", c.wantBody)
			}
		})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/console/settings.json", nil))
	var s Settings
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil || len(s.Events) != 1 || !s.Events[0].At.Equal(at) {
		t.Fatalf("settings round trip: %v %+v", err, s)
	}
}
