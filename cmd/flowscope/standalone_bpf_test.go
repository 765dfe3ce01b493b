//go:build !noduckdb

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/testgate"
)

// roleEnv makes this test binary a tiny TCP server or client (see init), started under the
// process names the test wants to see on the map.
const roleEnv = "FLOWSCOPE_TEST_ROLE"

func init() {
	switch os.Getenv(roleEnv) {
	case "server":
		os.Exit(serveRole())
	case "client":
		os.Exit(clientRole(os.Getenv("FLOWSCOPE_TEST_ADDR")))
	}
}

// serveRole answers every connection's line with a line and prints its address first.
func serveRole() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		_, _ = bufio.NewReader(c).ReadString('\n')
		_, _ = io.WriteString(c, "hello\n")
		_ = c.Close()
	}
}

// clientRole connects five times a second until killed.
func clientRole(addr string) int {
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			_, _ = io.WriteString(c, "hi\n")
			_, _ = io.ReadAll(c)
			_ = c.Close()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestStandaloneNamesLocalProcesses runs `flowscope standalone` on this machine (real
// exporter) while two processes talk over loopback, and waits for the map's API to show the
// edge between them by their process names, seconds after the traffic starts.
func TestStandaloneNamesLocalProcesses(t *testing.T) {
	testgate.BPF(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	ready := filepath.Join(dir, "ready")
	done := make(chan error, 1)
	go func() {
		done <- runStandalone(ctx, []string{"--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--ready-file", ready, "--log-level", "warn"})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("standalone: %v", err)
		}
	})
	url := waitReady(t, ready, done)

	server := startRole(t, dir, "fs-e2e-server", "server", "")
	addr, err := bufio.NewReader(server.stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("server address: %v", err)
	}
	addr = strings.TrimSpace(addr)
	startRole(t, dir, "fs-e2e-client", "client", addr)
	_, port, _ := net.SplitHostPort(addr)

	// The client end is named by its process from the connect hook, the server end by the
	// process that closes it (the exporter stamps it at FIN_WAIT1/LAST_ACK), or else by the
	// process holding its listener.
	start := time.Now()
	deadline := start.Add(90 * time.Second)
	clientNamed := false
	for {
		g := getDeps(t, url)
		kinds := map[string]string{}
		for _, n := range g.Nodes {
			kinds[n.ID] = n.Kind + "/" + n.WorkloadKind
		}
		for _, e := range g.Edges {
			if fmt.Sprint(e.Port) != port || e.Src != "fs-e2e-client" {
				continue
			}
			if kinds[e.Src] != "host/process" {
				t.Fatalf("client node kind %q, want host/process", kinds[e.Src])
			}
			clientNamed = true
			if e.Dst == "fs-e2e-server" {
				if kinds[e.Dst] != "host/process" {
					t.Errorf("server node kind %q, want host/process", kinds[e.Dst])
				}
				t.Logf("edge %s -> %s:%s on the map %.1f s after the traffic started", e.Src, e.Dst, port, time.Since(start).Seconds())
				return
			}
		}
		if time.Now().After(deadline) {
			logExporterState(t, url)
			t.Fatalf("no edge fs-e2e-client -> fs-e2e-server on port %s after 90 s (client named: %v); edges on that port: %+v", port, clientNamed, onPort(g, port))
		}
		time.Sleep(time.Second)
	}
}

type roleProc struct{ stdout io.Reader }

// startRole runs this binary as role under a symlink called name (its process name).
func startRole(t *testing.T, dir, name, role, addr string) roleProc {
	t.Helper()
	exe, _ := os.Executable()
	link := filepath.Join(dir, name)
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link)
	cmd.Env = append(os.Environ(), roleEnv+"="+role, "FLOWSCOPE_TEST_ADDR="+addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return roleProc{stdout: out}
}

func waitReady(t *testing.T, ready string, done <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(ready); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
		select {
		case err := <-done:
			t.Fatalf("standalone exited: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatal("standalone not ready in 60 s")
	return ""
}

type depsAnswer struct {
	Nodes []struct {
		ID           string `json:"id"`
		Kind         string `json:"kind"`
		WorkloadKind string `json:"workload_kind"`
	} `json:"nodes"`
	Edges []struct {
		Src  string `json:"src"`
		Dst  string `json:"dst"`
		Port int    `json:"port"`
	} `json:"edges"`
}

func getDeps(t *testing.T, url string) depsAnswer {
	t.Helper()
	res, err := http.Get(url + "api/v1/deps?from=-5m&to=now")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var g depsAnswer
	if err := json.NewDecoder(res.Body).Decode(&g); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("deps: %d %v", res.StatusCode, err)
	}
	return g
}

func onPort(g depsAnswer, port string) []string {
	var out []string
	for _, e := range g.Edges {
		if fmt.Sprint(e.Port) == port {
			out = append(out, e.Src+" -> "+e.Dst)
		}
	}
	return out
}

// logExporterState logs the exporter's loop counters from /metrics: what the snapshot passes
// and the listener owners did while a server end stayed unnamed.
func logExporterState(t *testing.T, url string) {
	t.Helper()
	res, err := http.Get(url + "metrics")
	if err != nil {
		t.Logf("metrics: %v", err)
		return
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "flowscope_exporter_") {
			t.Log(line)
		}
	}
}
