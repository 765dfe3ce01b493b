// Package testgate decides whether tests that need privileges or real servers run, skip or
// fail: they skip locally when they cannot run and fail when the REQUIRE variables are set
// (CI sets them), so a privileged test can never vanish silently.
package testgate

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// Environment variables that turn a skip into a failure.
const (
	RequireBPFEnv      = "FLOWSCOPE_REQUIRE_BPF"
	RequireServicesEnv = "FLOWSCOPE_REQUIRE_SERVICES"
)

// BPF skips the test unless the process may load BPF programs and manage network namespaces
// and cgroups (root with CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and CAP_SYS_ADMIN); with
// FLOWSCOPE_REQUIRE_BPF=1 it fails instead.
func BPF(t testing.TB) {
	t.Helper()
	if reason := bpfUnavailable(); reason != "" {
		Unavailable(t, RequireBPFEnv, reason)
	}
}

// Services is for tests that need a real server (ClickHouse, NATS, kube-apiserver): call it
// with the reason the server is missing; it skips, or fails with FLOWSCOPE_REQUIRE_SERVICES=1.
func Services(t testing.TB, reason string) {
	t.Helper()
	Unavailable(t, RequireServicesEnv, reason)
}

// Unavailable skips the test, or fails it when env is set to 1.
func Unavailable(t testing.TB, env, reason string) {
	t.Helper()
	if os.Getenv(env) == "1" {
		t.Fatalf("%s=1 but this test cannot run: %s", env, reason)
	}
	t.Skipf("skipped (set %s=1 to make this a failure): %s", env, reason)
}

// Required reports whether env is set to 1.
func Required(env string) bool { return os.Getenv(env) == "1" }

func bpfUnavailable() string {
	if os.Geteuid() != 0 {
		return "needs root"
	}
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return "reading capabilities: " + err.Error()
	}
	need := map[string]uint{"CAP_NET_ADMIN": unix.CAP_NET_ADMIN, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN, "CAP_BPF": unix.CAP_BPF, "CAP_PERFMON": unix.CAP_PERFMON}
	for name, c := range need {
		if data[c/32].Effective&(1<<(c%32)) == 0 {
			return "missing capability " + name
		}
	}
	return ""
}
