//go:build noduckdb

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/flowscope/flowscope/internal/collector/ingest"
)

// A build with -tags noduckdb leaves the embedded store (DuckDB, whose static initialisation
// alone maps tens of MB into every process) out of the binary: the lean build for the per-node
// exporter. The store-backed commands say so instead of running.

var errNoStore = errors.New("this flowscope was built without the embedded store (-tags noduckdb); build without that tag for standalone, or run the collector with --output=jsonl or none")

func init() {
	register("standalone", "(not in this build: it was built without the embedded store)", func(context.Context, []string) error {
		return exitError{code: 1, err: errNoStore}
	})
}

func runCollectorPipeline(context.Context, ingest.Config, bool, pipelineFlags, string, *slog.Logger) error {
	return exitError{code: 1, err: errNoStore}
}
