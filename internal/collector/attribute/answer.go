package attribute

import (
	"net/netip"

	"github.com/flowscope/flowscope/internal/collector/ownership"
	"github.com/flowscope/flowscope/internal/flow"
)

// answer is what a held record keeps of a decided lookup: the store's brief answer (8 bytes
// where an Answer takes 48; it comes back in registers). Pending answers are not kept.
type answer ownership.Brief

func (x answer) attributed() bool { return x.Code == 0 }
func (x answer) exporter() bool   { return x.Bits&ownership.BriefExporter != 0 }
func (x answer) service() bool    { return x.Bits&ownership.BriefService != 0 } // (only an attributed answer names an owner)

// kind is the kind of owner an answer names ("" when unattributed).
func (x answer) kind(v ownership.View) flow.EndpointKind {
	if !x.attributed() {
		return ""
	}
	return v.Kind(x.Ref)
}

// fill renders an answer for addr:port into *e.
func (x answer) fill(v ownership.View, e *flow.Endpoint, addr netip.Addr, port uint16) {
	if x.attributed() {
		v.FillEndpoint(e, x.Ref, addr, port)
		return
	}
	*e = flow.Endpoint{Addr: addr, Port: port, Kind: flow.EndpointUnattributed, Reason: x.Code.Reason()}
}
