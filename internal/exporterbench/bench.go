// Package exporterbench measures the exporter's cost on this machine: it runs a real exporter
// process, drives a fixed rate of short connections between two network namespaces (or over
// loopback), and reads the kernel's run-time statistics of the exporter's BPF programs, the
// exporter's CPU time and peak memory, and what it reported lost.
package exporterbench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/flowscope/flowscope/internal/testnet"
)

var interrupt = os.Interrupt

// serverPort is the load's server port.
const serverPort = 8080

// warmup is how long the exporter runs before its idle rate is measured.
const warmup = 20 * time.Second

// Config of one run.
type Config struct {
	Exe      string        // the flowscope binary (default: this executable)
	Path     string        // "veth" (two namespaces) or "loopback" (inside one namespace)
	Rate     int           // connections per second
	Duration time.Duration // of the load
	Workers  int           // concurrent client connections at most (default 64)
	Args     []string      // extra exporter flags
	// Output is where the exporter's records go: "jsonl" (default; standard output, read by
	// the benchmark) or "grpc" (a real collector process, started by the benchmark).
	Output string
}

// Result of one run. Per-connection figures cover both ends of each connection.
type Result struct {
	Path               string             `json:"path"`
	Output             string             `json:"output"`
	RateTarget         int                `json:"rate_target"`
	RateAchieved       float64            `json:"rate_achieved"`
	Connections        uint64             `json:"connections"`
	Failed             uint64             `json:"failed"`
	Behind             uint64             `json:"behind"` // connections the load generator could not start in time
	BPFNsPerConn       float64            `json:"bpf_ns_per_conn"`
	BPFRunsPerConn     float64            `json:"bpf_runs_per_conn"`
	BPFNsPerRun        float64            `json:"bpf_ns_per_run"`
	BPFNsPerConnByProg map[string]float64 `json:"bpf_ns_per_conn_by_program"`
	ExporterNsPerRec   float64            `json:"exporter_cpu_ns_per_record"`
	ExporterIdleNsPerS float64            `json:"exporter_idle_cpu_ns_per_s"`
	RecordsExpected    uint64             `json:"records_expected"`
	RecordsSeen        uint64             `json:"records_seen"`
	Lost               uint64             `json:"lost_reported"`
	PeakRSSBytes       uint64             `json:"peak_rss_bytes"`
	MapBytes           uint64             `json:"bpf_map_bytes"`
}

// Run performs one benchmark run. It needs root.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return Result{}, err
		}
		cfg.Exe = exe
	}
	exe, remove, err := privateCopy(cfg.Exe)
	if err != nil {
		return Result{}, err
	}
	defer remove()
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.Output == "" {
		cfg.Output = "jsonl"
	}
	res := Result{Path: cfg.Path, Output: cfg.Output, RateTarget: cfg.Rate}
	pair, err := testnet.CreatePair(testnet.Options{Prefix: "fsb"})
	if err != nil {
		return res, err
	}
	defer pair.Close()
	srvNs, to := pair.B, pair.B.Addr4
	if cfg.Path == "loopback" {
		srvNs, to = pair.A, netip.MustParseAddr("127.0.0.1")
	}
	var ln net.Listener
	if err := srvNs.Do(func() (err error) {
		// a service port, as servers have; the namespace is the benchmark's own, so it is free
		ln, err = net.Listen("tcp", netip.AddrPortFrom(to, serverPort).String())
		return err
	}); err != nil {
		return res, err
	}
	defer ln.Close()
	go Serve(ln)
	addr := ln.Addr().(*net.TCPAddr).AddrPort()

	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return res, fmt.Errorf("enabling BPF run-time statistics: %w", err)
	}
	defer stats.Close()
	pmax, mmax := maxIDs()
	var ch *child
	if cfg.Output == "grpc" {
		col, err := startCollector(ctx, cfg.Exe)
		if err != nil {
			return res, err
		}
		defer col.stop()
		ch, err = startShippingChild(ctx, exe, col, cfg.Args...)
	} else {
		ch, err = startChild(ctx, exe, []uint32{pair.A.Inum, pair.B.Inum}, cfg.Args...)
	}
	if err != nil {
		return res, err
	}
	defer ch.stop()
	if err := waitFor(func() bool { return ch.summaries.Load() > 0 }, 20*time.Second); err != nil {
		return res, errors.New("the exporter reported nothing within 20 s")
	}
	objs, err := findObjects(pmax, mmax)
	if err != nil {
		return res, err
	}
	defer objs.Close()

	// Start-up work (loading, the first snapshot passes, pages of the binary coming back after
	// the exporter released them) is not idle: measured as idle it would be subtracted from
	// the load and flatter the figure.
	time.Sleep(warmup)
	idleStart, _, _ := procCPU(ch.pid())
	const idle = 10 * time.Second // one socket snapshot pass (every 10 s by default) falls in it
	time.Sleep(idle)
	idleEnd, _, _ := procCPU(ch.pid())
	res.ExporterIdleNsPerS = float64(idleEnd-idleStart) / idle.Seconds()

	byProg0 := objs.perProgram()
	ns0, runs0, _, err := objs.runtime()
	if err != nil {
		return res, err
	}
	cpu0, _, _ := procCPU(ch.pid())
	fin0 := ch.finals.Load()
	lr := runLoad(pair.A, addr, cfg.Rate, cfg.Duration, cfg.Workers)
	res.Connections, res.Failed, res.Behind = lr.done, lr.failed, lr.behind
	res.RateAchieved = float64(lr.done) / lr.elapsed.Seconds()
	res.RecordsExpected = 2 * (lr.done + lr.failed)
	_ = waitFor(func() bool { return ch.finals.Load()-fin0 >= res.RecordsExpected }, 15*time.Second)
	ns1, runs1, _, err := objs.runtime()
	if err != nil {
		return res, err
	}
	time.Sleep(time.Second) // one more summary
	cpu1, rss, _ := procCPU(ch.pid())
	res.RecordsSeen = ch.finals.Load() - fin0
	res.Lost = ch.lost.Load()
	if s := ch.last.Load(); s != nil {
		res.Lost = s.RingLost + s.RecursionMisses + s.Vanished
	}
	conns := float64(lr.done + lr.failed)
	res.BPFNsPerConn = float64(ns1-ns0) / conns
	res.BPFRunsPerConn = float64(runs1-runs0) / conns
	if runs1 > runs0 {
		res.BPFNsPerRun = float64(ns1-ns0) / float64(runs1-runs0)
	}
	res.BPFNsPerConnByProg = map[string]float64{}
	for name, v := range objs.perProgram() {
		res.BPFNsPerConnByProg[name] = float64(v-byProg0[name]) / conns
	}
	if res.RecordsSeen > 0 {
		busy := float64(cpu1-cpu0) - res.ExporterIdleNsPerS*(lr.elapsed.Seconds()+1)
		// Records of other connections on the machine (counted when shipping) cost CPU too;
		// dividing by this benchmark's records only can overstate the cost, never understate it.
		res.ExporterNsPerRec = max(busy, 0) / float64(min(res.RecordsSeen, res.RecordsExpected))
	}
	res.PeakRSSBytes = rss
	res.MapBytes = objs.mapBytes()
	return res, nil
}

func waitFor(cond func() bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
