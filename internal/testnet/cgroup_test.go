package testnet_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/flowscope/flowscope/internal/testgate"
	"github.com/flowscope/flowscope/internal/testnet"
)

func TestCgroupDo(t *testing.T) {
	testgate.BPF(t)
	orig, err := testnet.SelfV2Path()
	if err != nil {
		t.Fatal(err)
	}
	pod := testnet.NewCgroup(t, testnet.KubeletPodPath("burstable", "0f3c5a8e-7b1d-4c2e-9a6f-1d2e3f4a5b6c", "cri-containerd", strings.Repeat("ab", 32)))
	svc := testnet.NewCgroup(t, "system.slice/nginx.service")

	for _, c := range []*testnet.Cgroup{pod, svc} {
		if _, err := os.Stat(c.Dir); err != nil {
			t.Fatal(err)
		}
		if want := kernfsID(t, c.Dir); c.ID() != want {
			t.Errorf("%s: ID() = %d, the kernel's file handle says %d", c.Path, c.ID(), want)
		}
		err := c.Do(func() error {
			self, err := testnet.SelfV2Path()
			if err != nil {
				return err
			}
			if self != c.Path {
				t.Errorf("inside Do: /proc/self/cgroup says %q, want %q", self, c.Path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if self, _ := testnet.SelfV2Path(); self != orig {
			t.Errorf("after Do: in %q, want back in %q", self, orig)
		}
	}
	if !strings.HasSuffix(pod.Path, "/kubepods-burstable-pod0f3c5a8e_7b1d_4c2e_9a6f_1d2e3f4a5b6c.slice/cri-containerd-"+strings.Repeat("ab", 32)+".scope") {
		t.Errorf("pod path %q", pod.Path)
	}
}

func TestCgroupCloseRemovesAll(t *testing.T) {
	testgate.BPF(t)
	c, err := testnet.CreateCgroup("a/b/c")
	if err != nil {
		t.Fatal(err)
	}
	top := filepath.Dir(filepath.Dir(filepath.Dir(c.Dir)))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(top); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Close: %v", top, err)
	}
}

func TestCreateCgroupRejectsEscapes(t *testing.T) {
	for _, name := range []string{"", "/abs", "..", "../x", "."} {
		if c, err := testnet.CreateCgroup(name); err == nil {
			c.Close()
			t.Errorf("CreateCgroup(%q) succeeded", name)
		}
	}
}

// kernfsID is the cgroup id from the kernel's own file handle for dir (kernfs encodes the
// 64-bit node id in it).
func kernfsID(t *testing.T, dir string) uint64 {
	t.Helper()
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := h.Bytes()
	if len(b) != 8 {
		t.Fatalf("file handle of %s has %d bytes, want 8", dir, len(b))
	}
	return binary.LittleEndian.Uint64(b)
}
