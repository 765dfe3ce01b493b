package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/flowscope/flowscope/internal/testgate"
)

// TestMain lets a test run this binary as flowscope itself: with FLOWSCOPE_TEST_MAIN set to
// space-separated arguments, it runs them and exits with flowscope's exit code.
func TestMain(m *testing.M) {
	if args := os.Getenv("FLOWSCOPE_TEST_MAIN"); args != "" {
		os.Exit(run(strings.Fields(args), os.Stderr))
	}
	os.Exit(m.Run())
}

func TestExporterWithoutPrivilegesNamesCapabilities(t *testing.T) {
	testgate.BPF(t) // needs root to drop to another user
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		testgate.Unavailable(t, testgate.RequireBPFEnv, "setpriv (util-linux) is not installed")
	}
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", os.Args[0])
	cmd.Env = append(os.Environ(), "FLOWSCOPE_TEST_MAIN=exporter --metrics-listen=")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, output %s", err, out)
	}
	for _, want := range []string{"needs root or these capabilities", "CAP_BPF", "CAP_PERFMON", "missing:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
