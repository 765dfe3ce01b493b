//go:build !noduckdb

package main

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/demo"
	"github.com/flowscope/flowscope/internal/exporter"
	"github.com/flowscope/flowscope/internal/exporter/flowtable"
	"github.com/flowscope/flowscope/internal/exporter/tracer"
	"github.com/flowscope/flowscope/internal/store"
	"github.com/flowscope/flowscope/internal/transport"
	"github.com/flowscope/flowscope/web"
)

// demoPolicy is the demo's declared segmentation: anything may reach the cluster's
// namespaces, only payments may leave the cluster. The demo's clients reach external
// networks from every namespace, so the audit lists violations.
const demoPolicy = `# Demo segmentation policy: only the payments namespace may leave the cluster.
default: deny
rules:
  - from: "*"
    to: "shop/*"
  - from: "*"
    to: "payments/*"
  - from: "*"
    to: "platform/*"
  - from: "payments/*"
    to: "network/*"
`

func demoSettings(note string) web.Settings {
	return web.Settings{Mode: "demo", Note: note, Policy: demoPolicy}
}

// demoEvents are the demo's scripted events, for the console to point at.
func demoEvents(start time.Time, c demo.Config) []web.Event {
	return []web.Event{{At: start.Add(c.FailAfter), What: "shop/reviews starts refusing every connection"}}
}

// demoExpectations are the demo's expected paths: the edges between workloads seen during
// the first five minutes of its history, before its scripted failure.
func demoExpectations(ctx context.Context, q store.Querier, start time.Time) ([]web.ExpectedPath, error) {
	edges, err := q.Edges(ctx, store.EdgeQuery{Range: store.Range{From: start, To: start.Add(5 * time.Minute)}, Directions: []store.Direction{store.Internal}})
	if err != nil {
		return nil, err
	}
	seen := map[web.ExpectedPath]bool{}
	var out []web.ExpectedPath
	for _, e := range edges {
		if strings.HasPrefix(e.Src, "unattributed:") || strings.HasPrefix(e.Dst, "unattributed:") || e.Closed < 5 {
			continue
		}
		p := web.ExpectedPath{From: e.Src, To: e.Dst, Port: e.Port}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// runLocalExporter captures this machine's TCP flows (as `flowscope exporter --output=collector`
// does) and ships them to the pipeline's gRPC ingest on loopback.
func runLocalExporter(ctx context.Context, grpcAddr string, reg *prometheus.Registry, log *slog.Logger, ready func()) error {
	host, port, err := net.SplitHostPort(grpcAddr)
	if err != nil {
		return err
	}
	tc := transport.DefaultConfig()
	tc.Collector, tc.Transport, tc.InsecurePlaintext = host, transport.GRPC, true
	tc.GRPCPort, _ = strconv.Atoi(port)
	return exporter.RunNode(ctx, exporter.NodeOptions{
		Tracer: tracer.Config{Hook: tracer.HookAuto, ProcessInfo: true},
		Loop: exporter.Config{Table: flowtable.Config{Interval: 30 * time.Second, ResetEvents: true},
			SummaryEvery: time.Minute},
		Ship: &tc, Registry: reg, Log: log.With("component", "exporter"), Ready: ready,
		// Start-up faulted in much of the binary (DuckDB's and the Kubernetes client's
		// initialisers): drop it, so only the code standalone runs comes back, page by page.
		ReleaseStartup: true,
	})
}
