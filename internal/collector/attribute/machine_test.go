package attribute

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkMachineLatency is a yardstick of the machine's memory, as BenchmarkReferenceMapLookup
// is of its speed at a typical lookup: the time of one load that waits for the one before,
// at a random line of an array of the given size. The attribution figures at 10,000 and
// 100,000 pods wait on such loads, more or less as the machine's caches serve them
// (docs/benchmarks/attribution-log.md, "Counted instead of timed"), so a run whose figures move
// with no change to the code should be read with this one beside it.
func BenchmarkMachineLatency(b *testing.B) {
	for _, mb := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("mb=%d", mb), func(b *testing.B) { benchChase(b, mb<<20) })
	}
}

// benchChase follows a random cycle through every cache line of size bytes.
func benchChase(b *testing.B, size int) {
	lines := make([]cacheLine, size/64)
	order := rand.New(rand.NewPCG(1, 2)).Perm(len(lines))
	for i, l := range order { // one cycle through all lines, in a random order
		lines[l][0] = uint64(order[(i+1)%len(order)])
	}
	at := uint64(order[0])
	b.ResetTimer()
	c := cpuTime()
	for range b.N {
		at = lines[at][0]
	}
	b.ReportMetric(float64((cpuTime()-c).Nanoseconds())/float64(b.N), "cpu-ns/load")
	if at >= uint64(len(lines)) {
		b.Fatal("the chase left the array")
	}
}
