package attribute

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkLiveFloor is the least memory work a record of BenchmarkAttributeJoinLive can cost
// on this machine, with no logic around it: the yardstick for the live figure. Each second,
// 16,384 records are added and those added seven seconds before are decided. Adding one
// writes its held record (in a ring, in arrival order: the best layout there is) and claims
// its local pod's address (a random line of a 100,000-address store, read and written).
// Deciding one reads the held record back, the peer address's line and the lines of the two
// owners it renders (random lines of a store of twice as many owners), and writes the
// outcome into the record. Only the lines' number and layout are modelled: what sits in
// them, and every instruction that attribution runs on them, is left out.
// held=N: the held record's size in cache lines (BenchmarkAttributeJoinLive's take four since
// 7f5cc8a, five before).
func BenchmarkLiveFloor(b *testing.B) {
	for _, pods := range []int{1_000, 10_000, 100_000} {
		for _, lines := range []int{2, 5} {
			b.Run(fmt.Sprintf("pods=%d/held=%d", pods, lines), func(b *testing.B) { benchLiveFloor(b, pods, lines) })
		}
	}
}

// cacheLine is one cache line of the floor's arrays.
type cacheLine [8]uint64

func benchLiveFloor(b *testing.B, pods, lines int) {
	const perSec, lag = 16384, 7
	entries := make([]cacheLine, pods)
	owners := make([]cacheLine, 2*pods)
	ring := make([]cacheLine, (lag+1)*perSec*lines)
	in := make([]cacheLine, 2*perSec) // the batch: two lines of each record read
	peer := func(i int) int { return (i*7919 + 13) % pods }
	sink := uint64(0)
	runtime.GC()
	b.ResetTimer()
	c := cpuTime()
	secs := (b.N + perSec - 1) / perSec
	slot := func(i int) int { return i % ((lag + 1) * perSec) * lines }
	for sec := 0; sec < secs+lag; sec++ {
		for k := range perSec {
			if sec >= secs {
				break // (every record added is decided)
			}
			i := sec*perSec + k // Add
			x, h := &in[2*k], slot(i)
			for l := range lines {
				ring[h+l][0], ring[h+l][7] = x[l&1]+uint64(i), uint64(l)
			}
			e := &entries[i%pods]
			e[1] = e[0] + uint64(sec) // the claim extends its pod's range
		}
		for k := range perSec {
			if sec < lag {
				break
			}
			i := (sec-lag)*perSec + k // Flush: the records of lag seconds ago
			h := slot(i)
			v := uint64(0)
			for l := range lines {
				v += ring[h+l][0]
			}
			p := peer(i)
			v += entries[p][0] + entries[p][1] + owners[2*p][3] + owners[2*(i%pods)+1][3]
			ring[h][1] = v // decided
			sink += v
		}
	}
	cpu := cpuTime() - c
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(secs*perSec), "cpu-ns/record")
	runtime.KeepAlive(sink)
}
