package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/flowscope/flowscope/internal/exporterbench"
)

func init() {
	register("bench", "measure flowscope's costs on this machine (bench exporter -h)", runBench)
}

func runBench(ctx context.Context, args []string) error {
	if len(args) == 4 && args[0] == "hold" { // a holder process of bench exporter --open
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return usageError{err}
		}
		return exporterbench.Hold(args[1], args[2], n)
	}
	if len(args) == 0 || args[0] != "exporter" {
		return usageError{fmt.Errorf("usage: flowscope bench exporter [flags]")}
	}
	fs := newFlagSet("bench exporter")
	path := fs.String("path", "veth", "where the load runs: veth (between two namespaces) or loopback")
	rate := fs.Int("rate", 2000, "connections per second (connect, 1 KiB request, 4 KiB response, close)")
	dur := fs.Duration("duration", 10*time.Second, "length of the load")
	workers := fs.Int("workers", 64, "concurrent client connections at most")
	profile := fs.String("exporter-cpu-profile", "", "have the exporter write a Go CPU profile to this file")
	exporterArgs := fs.String("exporter-args", "", "extra flags for the exporter process, space-separated (e.g. \"--batch-size=5000\")")
	exe := fs.String("exporter-binary", "", "run this flowscope binary as the exporter (default: this one), e.g. to compare two builds in one run")
	output := fs.String("output", "jsonl", "where the exporter's records go: jsonl (standard output) or grpc (a real collector process)")
	open := fs.Int("open", 0, "instead of a load: hold this many connections open and report the exporter's memory")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *path != "veth" && *path != "loopback" {
		return usageError{fmt.Errorf("--path must be veth or loopback")}
	}
	if *output != "jsonl" && *output != "grpc" {
		return usageError{fmt.Errorf("--output must be jsonl or grpc")}
	}
	if *rate <= 0 || *dur <= 0 || *workers <= 0 || *open < 0 {
		return usageError{fmt.Errorf("--rate, --duration and --workers must be positive")}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if *open > 0 {
		r, err := exporterbench.RunOpen(ctx, *exe, *open, strings.Fields(*exporterArgs)...)
		if err != nil {
			return err
		}
		return enc.Encode(r)
	}
	extra := strings.Fields(*exporterArgs)
	if *profile != "" {
		extra = append(extra, "--cpu-profile="+*profile)
	}
	r, err := exporterbench.Run(ctx, exporterbench.Config{Path: *path, Rate: *rate, Duration: *dur, Workers: *workers, Args: extra, Output: *output, Exe: *exe})
	if err != nil {
		return err
	}
	return enc.Encode(r)
}
