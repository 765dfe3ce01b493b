package exporter

import "github.com/flowscope/flowscope/internal/flow"

// finalize completes records just before they leave the exporter (write): whether the socket
// lives in the node's own network namespace (host network: its local address is the node's),
// and for client sockets the NAT translation of their destination, from conntrack in the
// socket's namespace (a Service VIP → its backend).
func (x *Exporter) finalize(recs []flow.Record) {
	for i := range recs {
		recs[i].HostNetwork = recs[i].Netns == x.ns.self
	}
	x.nat.Translate(recs, x.ns.paths)
}
