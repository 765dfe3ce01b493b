package flowbatch

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
)

// SampleRecords returns n realistic short IPv4 flows ending shortly before now, spread over
// a few local workloads: test and benchmark input.
func SampleRecords(n int, now time.Time) []flow.Record {
	recs := make([]flow.Record, n)
	var workloads [8]flow.Workload // an identity cache hands out the same values again
	for p := range workloads {
		workloads[p] = flow.Workload{
			Kind: flow.KindPod, PodUID: fmt.Sprintf("3f1e2d4c-0000-4000-8000-00000000000%d", p),
			ContainerID: fmt.Sprintf("%064x", p+1), Runtime: "containerd",
		}
	}
	for i := range recs {
		pod := i % 8
		end := now.Add(-time.Duration(n-i) * time.Millisecond)
		recs[i] = flow.Record{
			ConnID:        uint64(100000 + i),
			Family:        flow.IPv4,
			LocalAddr:     netip.AddrFrom4([4]byte{10, 1, 0, byte(pod + 2)}),
			LocalPort:     uint16(32768 + i%28000),
			RemoteAddr:    netip.AddrFrom4([4]byte{10, 2, byte(i % 4), byte(i%200 + 2)}),
			RemotePort:    8080,
			Direction:     flow.Client,
			Netns:         4026532000 + uint32(pod),
			CgroupID:      7000 + uint64(pod),
			Workload:      workloads[pod],
			Start:         end.Add(-time.Duration(1200+i%900) * time.Microsecond),
			End:           end,
			StartKnown:    true,
			BytesSent:     1024,
			BytesReceived: 4096,
			SegsSent:      4,
			SegsReceived:  5,
			SrttUs:        uint32(40 + i%60),
			MinRttUs:      uint32(30 + i%20),
			Outcome:       flow.OK,
			CloseState:    "FIN_WAIT2",
		}
	}
	return recs
}
