//go:build !noduckdb

package main

import (
	"bytes"
	"database/sql"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/flowscope/flowscope/internal/store/duckdb"
)

// TestStandaloneBadInput: each bad input gets a clear message and a non-zero exit, before
// anything is served.
func TestStandaloneBadInput(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(t.TempDir(), "newer")
	makeNewerSchema(t, newer)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"port taken", []string{"--listen", taken.Addr().String()}, "listening for the API on " + taken.Addr().String()},
		{"data dir is a file", []string{"--data-dir", file}, "data directory " + file + " cannot be created"},
		{"data dir below a file", []string{"--data-dir", filepath.Join(file, "sub")}, "cannot be created"},
		{"newer schema", []string{"--data-dir", newer}, "was written by a newer flowscope"},
		{"bad history", []string{"--demo-history", "2s"}, "--demo-history must be within 1m–1h"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(append([]string{"standalone", "--demo", "--log-level", "error"}, c.args...), &stderr)
			if code == 0 {
				t.Fatalf("exit 0, want non-zero; stderr: %s", stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Fatalf("stderr %q does not say %q", stderr.String(), c.want)
			}
		})
	}
	if os.Geteuid() != 0 { // root reads any directory
		dir := filepath.Join(t.TempDir(), "locked")
		if err := os.Mkdir(dir, 0o000); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		if code := run([]string{"standalone", "--demo", "--data-dir", dir}, &stderr); code == 0 || !strings.Contains(stderr.String(), "is not readable") {
			t.Fatalf("unreadable data dir: exit %d, %q", code, stderr.String())
		}
	}
}

// makeNewerSchema creates a store in dir/store and marks it as written by a later version.
func makeNewerSchema(t *testing.T, dir string) {
	t.Helper()
	st, err := duckdb.Open(t.Context(), duckdb.Config{Dir: filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", filepath.Join(dir, "store", "flowscope.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE meta SET v = 999 WHERE k = 'schema_version'`); err != nil {
		t.Fatal(err)
	}
}
