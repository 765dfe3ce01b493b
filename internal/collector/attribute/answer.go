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
	reason uint8 // index in reasonTable.names; 0 (no reason): attributed
	flags  uint8
}

const (
	ansExporter uint8 = 1 << iota // the address is an exporter's
	ansService                    // attributed to a Service
)

func (x answer) attributed() bool { return x.reason == 0 }
func (x answer) exporter() bool   { return x.flags&ansExporter != 0 }
func (x answer) service() bool    { return x.flags&ansService != 0 }

// reasonTable numbers the reasons answers carry: the known ones, then any other the store
// gives (none today), in the order first seen; it grows only with the store's vocabulary.
type reasonTable struct {
	names []flow.Reason
}

func newReasonTable() reasonTable {
	return reasonTable{names: []flow.Reason{"", flow.ReasonNoOwner, flow.ReasonGap, flow.ReasonConflict, flow.ReasonStale, flow.ReasonExternal}}
}

// index returns r's number, adding r when it is new.
func (t *reasonTable) index(r flow.Reason) uint8 {
	switch r {
	case "":
		return 0
	case flow.ReasonGap:
		return 2
	}
	for i, n := range t.names {
		if n == r {
			return uint8(i)
		}
	}
	if len(t.names) == 256 {
		panic("attribute: more than 255 unattributed reasons")
	}
	t.names = append(t.names, r)
	return uint8(len(t.names) - 1)
}

// keep makes the compact form of a decided (not pending) answer.
func (t *reasonTable) keep(a ownership.Answer) answer {
	x := answer{ref: a.Ref, reason: t.index(a.Reason)}
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
func (t *reasonTable) fill(v ownership.View, e *flow.Endpoint, x answer, addr netip.Addr, port uint16) {
	if x.attributed() {
		v.FillEndpoint(e, x.ref, addr, port)
		return
	}
	*e = flow.Endpoint{Addr: addr, Port: port, Kind: flow.EndpointUnattributed, Reason: t.names[x.reason]}
}
