package exporterbench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// collectorProc is a real collector (ingest only) that the exporter ships to over gRPC.
type collectorProc struct {
	cmd   *exec.Cmd
	port  int
	spool string
}

func startCollector(ctx context.Context, exe string) (*collectorProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	spool, err := os.MkdirTemp("", "flowscope-bench-spool-")
	if err != nil {
		return nil, err
	}
	c := &collectorProc{port: port, spool: spool}
	c.cmd = exec.CommandContext(ctx, exe, "collector", "--output=none", "--insecure-plaintext",
		"--grpc-listen=127.0.0.1:"+strconv.Itoa(port), "--https-listen=", "--udp-listen=",
		"--spool-dir="+spool, "--log-level=warn")
	c.cmd.Stderr = os.Stderr
	if err := c.cmd.Start(); err != nil {
		os.RemoveAll(spool)
		return nil, fmt.Errorf("starting the collector: %w", err)
	}
	if err := waitFor(func() bool {
		conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			conn.Close()
		}
		return err == nil
	}, 20*time.Second); err != nil {
		c.stop()
		return nil, fmt.Errorf("the collector did not listen within 20 s")
	}
	return c, nil
}

func (c *collectorProc) stop() {
	_ = c.cmd.Process.Signal(interrupt)
	_ = c.cmd.Wait()
	os.RemoveAll(c.spool)
}

// shipArgs are the exporter flags for shipping to c, with /metrics on metricsPort.
func (c *collectorProc) shipArgs(metricsPort int) []string {
	return []string{"--output=collector", "--transport=grpc", "--insecure-plaintext",
		"--collector=127.0.0.1", "--collector-grpc-port=" + strconv.Itoa(c.port),
		"--metrics-listen=127.0.0.1:" + strconv.Itoa(metricsPort)}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// pollMetrics reads the exporter's /metrics every 2 s until ctx ends: final records of
// every namespace (background connections on the machine included) and known losses.
func (c *child) pollMetrics(ctx context.Context, port int) {
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		if finals, lost, err := scrape(url); err == nil {
			c.finals.Store(finals)
			c.lost.Store(lost)
			c.summaries.Add(1)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scraper reads /metrics uncompressed: gzip would cost the exporter more than the scrape.
var scraper = &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 5 * time.Second}

func scrape(url string) (finals, lost uint64, err error) {
	resp, err := scraper.Get(url)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch {
		case name == `flowscope_exporter_records_total{kind="final"}`:
			finals = uint64(v)
		case strings.HasPrefix(name, "flowscope_exporter_lost_total"),
			strings.HasPrefix(name, "flowscope_exporter_bpf_recursion_misses_total"):
			lost += uint64(v)
		}
	}
	return finals, lost, sc.Err()
}
