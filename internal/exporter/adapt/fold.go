package adapt

import (
	"net/netip"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

type foldKey struct {
	w      flow.Workload
	netns  uint32
	cgroup uint64
	local  netip.Addr
	remote netip.Addr
	port   uint16
	dir    flow.Direction
}

// Fold folds the short final flows of recs (shorter than short) into aggregates per (local
// workload, local address, remote address, remote port, direction), with counts and summed
// counters; interim records and longer flows are kept as they are. It returns the kept
// records (reusing recs' storage) and the aggregates, in first-seen order.
func Fold(recs []flow.Record, short time.Duration) ([]flow.Record, []flowbatch.Aggregate) {
	idx := map[foldKey]int{}
	var aggs []flowbatch.Aggregate
	kept := recs[:0]
	for _, r := range recs {
		if r.Interim || r.End.Sub(r.Start) >= short {
			kept = append(kept, r)
			continue
		}
		k := foldKey{r.Workload, r.Netns, r.CgroupID, r.LocalAddr, r.RemoteAddr, r.RemotePort, r.Direction}
		i, ok := idx[k]
		if !ok {
			i = len(aggs)
			idx[k] = i
			aggs = append(aggs, flowbatch.Aggregate{
				Workload: r.Workload, Netns: r.Netns, CgroupID: r.CgroupID, LocalAddr: r.LocalAddr,
				RemoteAddr: r.RemoteAddr, RemotePort: r.RemotePort, Direction: r.Direction,
				FirstStart: r.Start, LastEnd: r.End, Outcomes: map[flow.Outcome]uint64{},
			})
		}
		a := &aggs[i]
		a.Flows++
		if r.Start.Before(a.FirstStart) {
			a.FirstStart = r.Start
		}
		if r.End.After(a.LastEnd) {
			a.LastEnd = r.End
		}
		a.BytesSent += r.BytesSent
		a.BytesReceived += r.BytesReceived
		a.SegsSent += r.SegsSent
		a.SegsReceived += r.SegsReceived
		a.Retransmits += r.Retransmits
		a.BytesRetransmitted += r.BytesRetransmitted
		a.ResetsSent += uint64(r.ResetsSent)
		a.ResetsReceived += uint64(r.ResetsReceived)
		a.SrttUsSum += uint64(r.SrttUs)
		a.Outcomes[r.Outcome]++
	}
	return kept, aggs
}
