// Package web serves flowscope's console: the single-page app built from this directory's
// TypeScript sources (npm run build → dist/, committed, so `go build` needs no npm) and a small
// JSON document telling the page how the server runs (demo or live, demo policies).
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed dist
var dist embed.FS

// Settings are what the page learns from /console/settings.json.
type Settings struct {
	Mode string `json:"mode"` // "demo" or "live"
	// Note is shown in the header (e.g. why the demo is served).
	Note string `json:"note,omitempty"`
	// Expect are expected paths the pathway view checks by default.
	Expect []ExpectedPath `json:"expect,omitempty"`
	// Policy is the declared allow-list or NetworkPolicies (YAML) the segmentation view
	// audits by default.
	Policy string `json:"policy,omitempty"`
	// Events are scripted moments worth looking at (the demo's failure).
	Events []Event `json:"events,omitempty"`
}

// Event is a moment the console offers to look at.
type Event struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
}

// ExpectedPath is one expected dependency.
type ExpectedPath struct {
	From string `json:"from"`
	To   string `json:"to"`
	Port uint16 `json:"port"`
}

// Handler serves the console: /console/settings.json, the built assets, and index.html for
// every other path (the page routes itself from the URL).
func Handler(settings func() Settings) http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embedded tree always has dist
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console/settings.json" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			_ = json.NewEncoder(w).Encode(settings())
			return
		}
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name != "" {
			if st, err := fs.Stat(sub, name); err == nil && !st.IsDir() {
				if strings.HasPrefix(name, "assets/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				files.ServeHTTP(w, r)
				return
			}
		}
		index, err := fs.ReadFile(sub, "index.html")
		if err != nil {
			http.Error(w, "the console was not built into this binary", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(index)
	})
}
