package attribute

import (
	"net/netip"

	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
)

// answer is what a held record keeps of a decided lookup: an ownership.Answer without its
// strings (8 bytes where the Answer takes 48). Pending answers are not kept.
type answer struct {
	ref    ownership.Ref
	reason ownership.ReasonCode // 0 (no reason): attributed
	flags  uint8
}

const (
	ansExporter uint8 = 1 << iota // the address is an exporter's
	ansService                    // attributed to a Service
)

func (x answer) attributed() bool { return x.reason == 0 }
func (x answer) exporter() bool   { return x.flags&ansExporter != 0 }
func (x answer) service() bool    { return x.flags&ansService != 0 }

// keep makes the compact form of a decided (not pending) answer.
func keep(a ownership.Answer) answer {
	x := answer{ref: a.Ref, reason: a.Code}
	if a.Exporter {
		x.flags |= ansExporter
	}
	if x.reason == 0 && a.Kind == flow.EndpointService {
		x.flags |= ansService
	}
	return x
}

// kind is the kind of owner an answer names ("" when unattributed).
func (x answer) kind(v ownership.View) flow.EndpointKind {
	if !x.attributed() {
		return ""
	}
	return v.Kind(x.ref)
}

// fill renders an answer for addr:port into *e.
func (x answer) fill(v ownership.View, e *flow.Endpoint, addr netip.Addr, port uint16) {
	if x.attributed() {
		v.FillEndpoint(e, x.ref, addr, port)
		return
	}
	*e = flow.Endpoint{Addr: addr, Port: port, Kind: flow.EndpointUnattributed, Reason: x.reason.Reason()}
}
