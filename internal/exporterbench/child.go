package exporterbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"

	"github.com/flowscope/flowscope/internal/exporter"
)

// child is an exporter process whose output the benchmark reads: it counts the final records
// of the benchmark's network namespaces and keeps the latest summary.
type child struct {
	cmd       *exec.Cmd
	finals    atomic.Uint64
	summaries atomic.Uint64
	last      atomic.Pointer[exporter.SummaryJSON]
	lost      atomic.Uint64 // shipping: from /metrics (with JSON lines it comes in last)
	done      chan error
	cancel    context.CancelFunc
}

func startChild(ctx context.Context, exe string, netns []uint32, extra ...string) (*child, error) {
	args := append([]string{"exporter", "--output=jsonl", "--summary-interval=1s", "--metrics-listen=", "--log-level=warn"}, extra...)
	c := &child{cmd: exec.CommandContext(ctx, exe, args...), done: make(chan error, 1)}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the exporter: %w", err)
	}
	go func() { c.done <- c.read(out, netns) }()
	return c, nil
}

// startShippingChild starts an exporter that ships to col over gRPC; its records are counted
// from its /metrics (every namespace: background connections on the machine count too).
func startShippingChild(ctx context.Context, exe string, col *collectorProc, extra ...string) (*child, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c, err := startChild(ctx, exe, nil, append(col.shipArgs(port), extra...)...)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	go c.pollMetrics(pctx, port)
	return c, nil
}

func (c *child) read(r io.Reader, netns []uint32) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var nsFields [][]byte
	for _, n := range netns {
		nsFields = append(nsFields, []byte(`"netns":`+strconv.FormatUint(uint64(n), 10)+`,`))
	}
	final := []byte(`"interim":false`)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte(`{"summary":`)) {
			var s struct {
				Summary exporter.SummaryJSON `json:"summary"`
			}
			if err := json.Unmarshal(line, &s); err == nil {
				c.last.Store(&s.Summary)
				c.summaries.Add(1)
			}
			continue
		}
		if !bytes.Contains(line, final) {
			continue
		}
		for _, f := range nsFields {
			if bytes.Contains(line, f) {
				c.finals.Add(1)
				break
			}
		}
	}
	return sc.Err()
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) stop() error {
	if c.cancel != nil {
		c.cancel()
	}
	_ = c.cmd.Process.Signal(interrupt)
	err := <-c.done
	_ = c.cmd.Wait()
	return err
}

// privateCopy copies the executable at path to a temporary file for the exporter child, so
// that the child's resident pages of its binary are its own: on a node the exporter is the only
// process running its binary, while here the benchmark runs the same one.
func privateCopy(path string) (string, func(), error) {
	src, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer src.Close()
	dst, err := os.CreateTemp("", "flowscope-exporter-")
	if err != nil {
		return "", nil, err
	}
	remove := func() { os.Remove(dst.Name()) }
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Chmod(0o755)
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		remove()
		return "", nil, fmt.Errorf("copying the executable: %w", err)
	}
	return dst.Name(), remove, nil
}
