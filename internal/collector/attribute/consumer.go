package attribute

import (
	"context"

	"github.com/flowscope/flowscope/internal/collector/ingest"
	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/flowbatch"
)

// Consumer feeds the ingest's accepted batches to attribution: heartbeats become ownership
// claims, records enter the holding window. It implements ingest.Consumer.
//
// Replays after a collector restart (the ingest delivers at least once) re-enter records
// whose earlier copies were lost with the in-memory holding window; claims are idempotent.
type Consumer struct {
	a *Attributor
}

// NewConsumer returns the ingest consumer of a.
func NewConsumer(a *Attributor) *Consumer { return &Consumer{a: a} }

var _ ingest.Consumer = (*Consumer)(nil)

// Name implements ingest.Consumer.
func (c *Consumer) Name() string { return "attribution" }

// Consume implements ingest.Consumer. Invalid records or ownerships are counted and skipped
// (the ingest validated the batch already); the error is never returned, since retrying the
// same batch could not succeed.
func (c *Consumer) Consume(_ context.Context, e ingest.Entry) error {
	c.Apply(e.Batch)
	return nil
}

// Apply takes one batch: its heartbeat first (so its records find their ownership), then its
// records.
func (c *Consumer) Apply(b *flowbatch.Batch) {
	if b.Heartbeat != nil {
		_ = c.a.store.Observe(HeartbeatClaims(b.ExporterID, b.Heartbeat)...)
	}
	if n := len(b.Aggregates); n > 0 {
		// Folded short flows (a degraded exporter) name no single connection: counted, not
		// attributed (flow.Conn has no flow count yet).
		c.a.m.aggregates.Add(float64(n))
	}
	if len(b.Records) == 0 {
		return
	}
	_ = c.a.AddBatch(b.ExporterID, b.NodeName, b.Records)
}

// HeartbeatClaims converts an exporter heartbeat into definite ownership claims: a pod's
// address is the pod's; any other local workload's address is the node's (host network); a
// host-network listener (Port set) is its workload's (address, port).
func HeartbeatClaims(exporter string, h *flowbatch.Heartbeat) []ownership.Claim {
	out := make([]ownership.Claim, 0, len(h.Ownerships))
	for _, o := range h.Ownerships {
		to := o.To
		if to.IsZero() {
			to = h.Time
		}
		owner := ownership.Owner{Kind: flow.EndpointNode, Node: h.Node}
		switch {
		case o.Workload.Kind == flow.KindPod:
			owner = ownership.Owner{Kind: flow.EndpointPod, PodUID: o.Workload.PodUID, Namespace: o.Namespace, Pod: o.PodName, Node: h.Node}
		case o.Port != 0:
			var ok bool
			if owner, ok = hostOwnerOf(h.Node, &o.Workload); !ok || owner.Kind == flow.EndpointNode {
				continue // a port of the node itself adds nothing to its address
			}
		}
		out = append(out, ownership.Claim{Addr: o.Addr, Port: o.Port, Owner: owner, From: o.From, To: to, Source: ownership.SourceHeartbeat, Origin: exporter})
	}
	return out
}
