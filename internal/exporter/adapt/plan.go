package adapt

import "time"

// Plan is what the exporter derives from its Instance.
type Plan struct {
	BatchSize     int           // records per batch
	FlushInterval time.Duration // longest a record waits for its batch
	BufferBytes   int           // encoded batches held through a collector outage
	MaxPending    int           // records waiting to be batched
	FlowEntries   int           // suggested BPF flow map entries
	RingBytes     int           // suggested BPF ring buffer size (a power of two)
	CPUBudget     float64       // cores the exporter may use (fraction × node cores)
}

// DefaultBudgetFraction is the exporter's CPU budget: 1% of the node.
const DefaultBudgetFraction = 0.01

// PlanFor sizes the exporter: memory for buffers is a small share of what the instance may
// use (1/64 of it, between 4 and 256 MiB), batches are larger and flushed less often on
// bigger machines (more flows, cheaper per flow), smaller and sooner on small ones.
func PlanFor(in Instance, budgetFraction float64) Plan {
	if budgetFraction <= 0 {
		budgetFraction = DefaultBudgetFraction
	}
	buf := clamp(int(in.MemoryBytes/64), 4<<20, 256<<20)
	p := Plan{
		BufferBytes: buf,
		CPUBudget:   budgetFraction * in.NodeCores,
	}
	switch {
	case in.Constrained():
		p.BatchSize, p.FlushInterval = 250, 2*time.Second
	case in.Cores < 8:
		p.BatchSize, p.FlushInterval = 1000, time.Second
	default:
		p.BatchSize, p.FlushInterval = 2000, time.Second
	}
	p.MaxPending = 8 * p.BatchSize
	// ~200 B per tracked connection in the flow map; 1/4 of the buffer memory's worth.
	p.FlowEntries = clamp(buf/4/200, 16384, 1<<20)
	p.RingBytes = pow2(clamp(buf/16, 1<<20, 16<<20))
	return p
}

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }

func pow2(v int) int {
	p := 1
	for p < v {
		p <<= 1
	}
	return p
}
