package residency

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const smaps = `00400000-00a9a000 r--p 00000000 fe:00 10338370                           /usr/bin/flowscope
Size:               6760 kB
Rss:                6760 kB
Anonymous:             0 kB
00a9a000-0482f000 r-xp 0069a000 fe:00 10338370                           /usr/bin/flowscope
Rss:               22236 kB
Anonymous:             0 kB
07670000-076ef000 r--p 0726f000 fe:00 10338370                           /usr/bin/flowscope
Rss:                 384 kB
Anonymous:           304 kB
076ef000-077aa000 rw-p 072ee000 fe:00 10338370                           /usr/bin/flowscope
Rss:                 716 kB
Anonymous:           100 kB
7fbc89ab9000-7fbc8a2ba000 r--s 00001000 00:10 1038                       anon_inode:bpf-map
Rss:                8196 kB
Anonymous:             0 kB
7f57a0d64000-7f57a0eba000 r-xp 00026000 fe:00 326269                     /usr/bin/flowscope (deleted)
Rss:                 944 kB
`

func TestParseSmaps(t *testing.T) {
	got := parseSmaps([]byte(smaps), "/usr/bin/flowscope")
	want := []Mapping{
		{Start: 0x400000, End: 0xa9a000, Perms: "r--p", RSSBytes: 6760 << 10},
		{Start: 0xa9a000, End: 0x482f000, Perms: "r-xp", RSSBytes: 22236 << 10},
		{Start: 0x7670000, End: 0x76ef000, Perms: "r--p", RSSBytes: 384 << 10, AnonBytes: 304 << 10},
		{Start: 0x76ef000, End: 0x77aa000, Perms: "rw-p", RSSBytes: 716 << 10, AnonBytes: 100 << 10},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("mappings (-want +got):\n%s", d)
	}
}

// Releasing the test binary's own read-only pages must leave it running normally: the pages
// come back from the page cache when used.
func TestReleaseExecutableKeepsRunning(t *testing.T) {
	n, err := ReleaseExecutable()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("nothing was resident in the executable's read-only mappings")
	}
	if _, err := os.ReadFile("/proc/self/status"); err != nil { // code and data used again
		t.Fatal(err)
	}
	t.Logf("released %d kB", n>>10)
}
