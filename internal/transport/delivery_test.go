package transport_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/collector/ingest"
	"github.com/flowscope/flowscope/internal/transport"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildFlowscope builds the flowscope binary once per test binary.
func buildFlowscope(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowscope-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "flowscope")
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/flowscope")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building flowscope: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// collectorProcess runs `flowscope collector` as a child process.
type collectorProcess struct {
	cmd *exec.Cmd
}

func startCollectorProcess(t *testing.T, bin, spool string, grpcPort int) *collectorProcess {
	t.Helper()
	return startCollectorWithOutput(t, bin, spool, grpcPort, nil)
}

func startCollectorWithOutput(t *testing.T, bin, spool string, grpcPort int, stdout io.Writer) *collectorProcess {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready.json")
	cmd := exec.Command(bin, "collector", "--insecure-plaintext", "--spool-dir", spool,
		"--grpc-listen", fmt.Sprintf("127.0.0.1:%d", grpcPort), "--https-listen", "", "--udp-listen", "",
		"--metrics-listen", "", "--ready-file", ready, "--output", "jsonl", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &collectorProcess{cmd: cmd}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(ready); err == nil {
			var a ingest.Addrs
			if json.Unmarshal(b, &a) == nil && a.GRPC != "" {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("collector did not become ready")
	return nil
}

func (p *collectorProcess) kill9()     { p.cmd.Process.Signal(syscall.SIGKILL); p.cmd.Wait() }
func (p *collectorProcess) terminate() { p.cmd.Process.Signal(syscall.SIGTERM); p.cmd.Wait() }

// readSpool counts every flow stored in a spool, by conn id.
func readSpool(t *testing.T, dir string, want int) *sink {
	t.Helper()
	cfg := ingest.DefaultConfig()
	cfg.GRPCListen, cfg.HTTPSListen, cfg.UDPListen, cfg.SpoolDir = "", "", "", dir
	snk := newSink()
	startCollector(t, cfg, snk)
	snk.waitTotal(t, want, 20*time.Second)
	time.Sleep(100 * time.Millisecond) // anything beyond want would show up now
	return snk
}

func waitDrained(t *testing.T, s *transport.Shipper, within time.Duration) transport.Stats {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		st := s.Stats()
		if st.BufferBatches == 0 && st.PendingRecords == 0 {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("shipper not drained: %+v", s.Stats())
	return transport.Stats{}
}

// TestKill9CollectorMidStream kills the collector process with SIGKILL while batches flow and
// restarts it on the same spool: every flow must be stored exactly once.
func TestKill9CollectorMidStream(t *testing.T) {
	bin := buildFlowscope(t)
	spool := t.TempDir()
	p := freePort(t)
	col := startCollectorProcess(t, bin, spool, p)
	cfg := shipperConfig(t, ingest.Addrs{GRPC: fmt.Sprintf("127.0.0.1:%d", p)}, transport.GRPC)
	cfg.BatchSize = 200
	s, reg := startShipper(t, cfg)

	const total, chunk = 40000, 400
	var written atomic.Int64
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() { // a steady writer
		defer close(done)
		for i := 0; i < total && ctx.Err() == nil; i += chunk {
			s.Write(records(i, chunk))
			written.Add(chunk)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	for written.Load() < total/3 {
		time.Sleep(10 * time.Millisecond)
	}
	col.kill9()
	time.Sleep(300 * time.Millisecond)
	col = startCollectorProcess(t, bin, spool, p)
	for written.Load() < 2*total/3 {
		time.Sleep(10 * time.Millisecond)
	}
	col.kill9()
	col = startCollectorProcess(t, bin, spool, p)
	<-done
	st := waitDrained(t, s, 30*time.Second)
	col.terminate()
	if st.RecordsDropped != 0 {
		t.Fatalf("shipper dropped %d records", st.RecordsDropped)
	}
	if metricSum(t, reg, "flowscope_transport_send_failures_total") == 0 {
		t.Error("the kills interrupted no delivery: the test proves nothing")
	}
	snk := readSpool(t, spool, total)
	distinct, tot := snk.count()
	if distinct != total || tot != total {
		t.Fatalf("spool holds %d flows, %d distinct; want each of %d exactly once", tot, distinct, total)
	}
	t.Logf("shipper: %+v", st)
}

// TestCollectorPrintsJSONL runs `flowscope collector --output=jsonl` and reads what it prints.
func TestCollectorPrintsJSONL(t *testing.T) {
	bin := buildFlowscope(t)
	p := freePort(t)
	var out syncBuffer
	col := startCollectorWithOutput(t, bin, t.TempDir(), p, &out)
	s, _ := startShipper(t, shipperConfig(t, ingest.Addrs{GRPC: fmt.Sprintf("127.0.0.1:%d", p)}, transport.GRPC))
	s.Write(records(0, 25))
	waitDrained(t, s, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "\n") < 25 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	col.terminate()
	seen := map[uint64]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var l ingest.JSONLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if l.Kind == "flow" {
			if l.ExporterID != "node-test" || l.BootID != s.BootID() || l.Flow.RemotePort != 80 {
				t.Errorf("line %+v", l)
			}
			seen[l.Flow.ConnID] = true
		}
	}
	if len(seen) != 25 {
		t.Errorf("%d flows printed, want 25", len(seen))
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
