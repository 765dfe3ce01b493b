// Command transport measures the cost of the exporter→collector transport over loopback:
// batches of 1,000 flows on each transport, with the collector in a child process so each
// side's CPU is measured on its own (getrusage of each process):
//
//	go run ./bench/transport [-flows 500000] [-transport all|grpc|https|udp]
//
// It prints collector CPU ns per flow (decode + validate + acknowledge + fsync'd hand-off),
// exporter CPU ns per flow (Write + batch + encode + send), and bytes on the wire per flow
// (what the exporter's sockets wrote: gRPC/HTTP framing included, IP/UDP/TCP headers not).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/flowscope/flowscope/internal/collector/ingest"
	"github.com/flowscope/flowscope/internal/exporter/adapt"
	"github.com/flowscope/flowscope/internal/flowbatch"
	"github.com/flowscope/flowscope/internal/transport"
)

func main() {
	role := flag.String("role", "exporter", "internal: exporter or collector")
	flows := flag.Int("flows", 500_000, "flows to send per transport")
	batch := flag.Int("batch", 1000, "flows per batch")
	which := flag.String("transport", "all", "all, grpc, https or udp")
	spool := flag.String("spool", "", "internal: the collector's spool directory")
	profile := flag.String("cpuprofile", "", "write the exporter side's CPU profile here")
	flag.Parse()
	childProfile = *profile
	if *profile != "" {
		if *role == "collector" {
			*profile += ".collector"
		}
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var err error
	if *role == "collector" {
		err = runCollector(*spool)
	} else {
		err = runExporter(*flows, *batch, *which)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func cpuNow() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runCollector serves on loopback, prints its addresses, then answers "cpu" lines on stdin
// with its CPU time and the flows it accepted.
func runCollector(spool string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg := ingest.DefaultConfig()
	cfg.GRPCListen, cfg.HTTPSListen, cfg.UDPListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.SpoolDir, cfg.InsecurePlaintext = spool, true
	cfg.ExporterBytesPerSec = 0
	reg := prometheus.NewRegistry()
	in, err := ingest.New(cfg, reg, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		return err
	}
	if err := in.Start(ctx); err != nil {
		return err
	}
	defer in.Stop()
	b, _ := json.Marshal(in.Addrs())
	fmt.Println(string(b))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fmt.Printf("%d %d\n", cpuNow().Nanoseconds(), int64(flowsAccepted(reg)))
	}
	pprof.StopCPUProfile()
	return nil
}

func flowsAccepted(reg *prometheus.Registry) float64 {
	mfs, _ := reg.Gather()
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "flowscope_collector_flows_received_total" {
			for _, m := range mf.Metric {
				n += m.Counter.GetValue()
			}
		}
	}
	return n
}

type child struct {
	cmd   *exec.Cmd
	in    *bufio.Writer
	out   *bufio.Scanner
	addrs ingest.Addrs
}

// childProfile is where the collector writes its CPU profile ("" for none).
var childProfile string

func startChild() (*child, error) {
	dir, err := os.MkdirTemp("", "flowscope-bench-")
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-role", "collector", "-spool", filepath.Join(dir, "spool"), "-cpuprofile", childProfile)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, in: bufio.NewWriter(stdin), out: bufio.NewScanner(stdout)}
	if !c.out.Scan() {
		return nil, fmt.Errorf("collector did not start")
	}
	if err := json.Unmarshal(c.out.Bytes(), &c.addrs); err != nil {
		return nil, err
	}
	go func() { cmd.Wait(); os.RemoveAll(dir) }()
	return c, nil
}

func (c *child) sample() (time.Duration, int64, error) {
	c.in.WriteString("cpu\n")
	c.in.Flush()
	if !c.out.Scan() {
		return 0, 0, fmt.Errorf("collector went away")
	}
	f := strings.Fields(c.out.Text())
	cpu, _ := strconv.ParseInt(f[0], 10, 64)
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return time.Duration(cpu), n, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}

func runExporter(flows, batch int, which string) error {
	trs := []string{transport.GRPC, transport.HTTPS, transport.UDP}
	if which != "all" {
		trs = []string{which}
	}
	fmt.Printf("%d flows per transport, batches of %d (UDP: datagrams of at most 1400 B)\n\n", flows, batch)
	fmt.Printf("%-6s %14s %14s %12s %12s %10s\n", "", "collector", "exporter", "wire", "flows/s", "received")
	fmt.Printf("%-6s %14s %14s %12s %12s %10s\n", "", "CPU ns/flow", "CPU ns/flow", "B/flow", "(wall)", "")
	for _, tr := range trs {
		if err := benchOne(tr, flows, batch); err != nil {
			return fmt.Errorf("%s: %w", tr, err)
		}
	}
	return nil
}

func benchOne(tr string, flows, batch int) error {
	c, err := startChild()
	if err != nil {
		return err
	}
	defer c.cmd.Process.Signal(syscall.SIGTERM)
	var wire atomic.Int64
	cfg := transport.DefaultConfig()
	cfg.Transport, cfg.InsecurePlaintext, cfg.ExporterID = tr, true, "bench"
	for _, p := range []struct {
		addr string
		dst  *int
	}{{c.addrs.GRPC, &cfg.GRPCPort}, {c.addrs.HTTPS, &cfg.HTTPSPort}, {c.addrs.UDP, &cfg.UDPPort}} {
		_, ps, _ := net.SplitHostPort(p.addr)
		*p.dst, _ = strconv.Atoi(ps)
	}
	cfg.BatchSize, cfg.FlushInterval, cfg.BufferBytes, cfg.MaxPending = batch, 20*time.Millisecond, 512<<20, flows
	cfg.Window = 8
	cfg.Instance = &adapt.Instance{NodeCores: 2, Cores: 2, MemoryBytes: 8 << 30, NodeMemory: 8 << 30}
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{conn, &wire}, nil
	}
	s, err := transport.New(cfg, prometheus.NewRegistry(), slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		return err
	}
	// A ring of records reused over and over: a capture path does not hold a million records
	// either, and a huge live heap would bill the exporter for the benchmark's own GC work.
	ring := flowbatch.SampleRecords(16*batch, time.Now())
	if err := s.Start(context.Background()); err != nil {
		return err
	}
	defer s.Stop()
	time.Sleep(200 * time.Millisecond)
	colCPU0, _, err := c.sample()
	if err != nil {
		return err
	}
	expCPU0, wall0 := cpuNow(), time.Now()
	for i := 0; i < flows; i += batch {
		j := i % len(ring)
		s.Write(ring[j:min(j+batch, len(ring), j+flows-i)])
		// Pace like a capture path would: records arrive while earlier ones are shipped (at
		// most two batches waiting to be batched or sent beyond the send window).
		for st := s.Stats(); st.PendingRecords > 2*batch || st.BufferBatches > cfg.Window+2; st = s.Stats() {
			time.Sleep(100 * time.Microsecond)
		}
		if tr == transport.UDP {
			time.Sleep(5 * time.Millisecond) // UDP has no flow control: pace it (200k flows/s at most)
		}
	}
	for {
		st := s.Stats()
		if st.BufferBatches == 0 && st.PendingRecords == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	expCPU, wall := cpuNow()-expCPU0, time.Since(wall0)
	var got int64
	var colCPU time.Duration
	for range 100 { // the collector may still be storing the last datagrams
		var cpu time.Duration
		if cpu, got, err = c.sample(); err != nil {
			return err
		}
		colCPU = cpu - colCPU0
		if got >= int64(flows) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := s.Stats()
	if st.RecordsDropped > 0 {
		return fmt.Errorf("shipper dropped %d records", st.RecordsDropped)
	}
	fmt.Printf("%-6s %14.0f %14.0f %12.1f %12.0f %10d\n", tr,
		float64(colCPU.Nanoseconds())/float64(got), float64(expCPU.Nanoseconds())/float64(flows),
		float64(wire.Load())/float64(flows), float64(flows)/wall.Seconds(), got)
	return nil
}
