package identity

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSocketOwners(t *testing.T) {
	root := t.TempDir()
	proc := func(pid, comm string, links ...string) {
		fd := filepath.Join(root, pid, "fd")
		if err := os.MkdirAll(fd, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, pid, "comm"), []byte(comm+"\n"), 0o644)
		for i, l := range links {
			if err := os.Symlink(l, filepath.Join(fd, string(rune('0'+i)))); err != nil {
				t.Fatal(err)
			}
		}
	}
	proc("10", "nginx", "socket:[100]", "/dev/null", "socket:[300]")
	proc("11", "worker", "socket:[300]")
	proc("self", "x", "socket:[999]") // not a pid
	now := time.Unix(1000, 0)
	s := &SocketOwners{ProcRoot: root, Now: func() time.Time { return now }}
	if pid, comm, ok := s.Owner(100); !ok || pid != 10 || comm != "nginx" {
		t.Errorf("Owner(100) = %d %q %v", pid, comm, ok)
	}
	if _, _, ok := s.Owner(300); ok {
		t.Error("a socket shared by two processes was given an owner")
	}
	if _, _, ok := s.Owner(500); ok { // unknown: one rescan a second at most
		t.Error("an unknown inode has an owner")
	}
	proc("12", "late", "socket:[400]", "socket:[500]")
	if _, _, ok := s.Owner(400); ok {
		t.Error("rescanned within a second")
	}
	now = now.Add(2 * time.Second)
	if pid, _, ok := s.Owner(400); !ok || pid != 12 {
		t.Errorf("Owner(400), first miss after a second = %d %v", pid, ok)
	}
	if _, _, ok := s.Owner(500); !ok {
		t.Error("Owner(500) is known since the last scan")
	}
	if _, _, ok := s.Owner(600); ok {
		t.Error("Owner(600)")
	}
	now = now.Add(2 * time.Second)
	if _, _, ok := s.Owner(600); ok {
		t.Error("a repeated miss rescanned before Rescan")
	}
}
