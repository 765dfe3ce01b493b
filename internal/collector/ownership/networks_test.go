package ownership

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseNetworksLongestPrefix(t *testing.T) {
	n, err := ParseNetworks("n.yaml", []byte(`
networks:
  - name: internet
    cidrs: [0.0.0.0/0, "::/0"]
  - name: aws
    cidrs: [52.0.0.0/8]
  - name: s3
    cidrs: [52.216.0.0/15, "2600:1f00::/24"]
`))
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"52.217.1.1": "s3", "52.1.1.1": "aws", "1.1.1.1": "internet",
		"2600:1f00::1": "s3", "2001:db8::1": "internet", "::ffff:52.216.0.1": "s3",
	} {
		if got, _ := n.Lookup(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Lookup(%s) = %q, want %q", addr, got, want)
		}
	}
}

func TestParseNetworksErrors(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"bad cidr", "networks:\n  - name: a\n    cidrs:\n      - 10.0.0.0/8\n      - 10.0.0.0/33\n", "n.yaml:5: network \"a\": bad CIDR"},
		{"host bits", "networks:\n  - name: a\n    cidrs: [10.0.0.1/8]\n", "n.yaml:3: network \"a\": CIDR \"10.0.0.1/8\" has host bits set"},
		{"duplicate", "networks:\n  - name: a\n    cidrs: [10.0.0.0/8]\n  - name: b\n    cidrs: [10.0.0.0/8]\n", "n.yaml:5: CIDR 10.0.0.0/8 is listed under both"},
		{"no name", "networks:\n  - cidrs: [10.0.0.0/8]\n", "n.yaml:2: network without a name"},
		{"unknown key", "nets:\n  - name: a\n", "n.yaml:1: unknown key \"nets\""},
		{"unknown field", "networks:\n  - name: a\n    cidr: [10.0.0.0/8]\n", "n.yaml:2:"},
		{"bad yaml", "networks: [\n", "n.yaml: yaml: line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseNetworks("n.yaml", []byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestNetworkFileReloadKeepsPreviousOnError(t *testing.T) {
	s := newTestStore(t, Config{})
	path := filepath.Join(t.TempDir(), "networks.yaml")
	write := func(data string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := NewNetworkFile(path, s, slog.New(slog.DiscardHandler))
	write("networks:\n  - name: corp\n    cidrs: [192.168.0.0/16]\n")
	if err := f.Load(); err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("192.168.3.3")
	if got := answer(s.Lookup(addr, 0, at(1), true)); got != "network/corp" {
		t.Fatalf("after load: %s", got)
	}
	write("networks:\n  - name: corp\n    cidrs: [192.168.0.0/166]\n")
	if !f.changed() {
		t.Error("changed() = false after a rewrite")
	}
	err := f.Load()
	if err == nil || !strings.Contains(err.Error(), ":3:") || !strings.Contains(err.Error(), "previous ones stay in force") {
		t.Errorf("malformed reload error = %v", err)
	}
	if got := answer(s.Lookup(addr, 0, at(1), true)); got != "network/corp" {
		t.Errorf("after a malformed reload: %s, want the previous network", got)
	}
	write("networks:\n  - name: office\n    cidrs: [192.168.3.0/24]\n")
	if err := f.Load(); err != nil {
		t.Fatal(err)
	}
	if got := answer(s.Lookup(addr, 0, at(1), true)); got != "network/office" {
		t.Errorf("after a good reload: %s", got)
	}
}
