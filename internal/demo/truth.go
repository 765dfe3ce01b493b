package demo

import (
	"fmt"
	"sort"

	"github.com/flowscope/flowscope/internal/flow"
)

// TrueConn is what really happened on one connection.
type TrueConn struct {
	ClientKey      string `json:"client_key"`           // the client exporter's conn key (exporter/conn_id)
	ServerKey      string `json:"server_key,omitempty"` // the server exporter's, when it observed the connection
	ClientUID      string `json:"client_uid"`
	ClientWorkload string `json:"client_workload"`           // namespace/workload
	ClientZone     string `json:"client_zone"`               // the client pod's node's zone
	ServerUID      string `json:"server_uid,omitempty"`      // empty: external, or nobody held the address
	ServerWorkload string `json:"server_workload,omitempty"` // namespace/workload
	ServerZone     string `json:"server_zone,omitempty"`     // the server pod's node's zone
	Service        string `json:"service,omitempty"`         // namespace/name of the Service dialled
	Network        string `json:"network,omitempty"`         // named network dialled
	ServerObserved bool   `json:"server_observed"`
	NoHolder       bool   `json:"no_holder,omitempty"` // nobody held the dialled address: unattributable by design
}

// Truth indexes the true connections by both sides' conn keys.
type Truth struct {
	byKey map[string]*TrueConn
	n     int
}

func newTruth() *Truth { return &Truth{byKey: map[string]*TrueConn{}} }

func (t *Truth) add(c *TrueConn) {
	if _, ok := t.byKey[c.ClientKey]; !ok {
		t.n++
	}
	t.byKey[c.ClientKey] = c
	if c.ServerKey != "" {
		t.byKey[c.ServerKey] = c
	}
}

// Conns returns the true connections ordered by client key.
func (t *Truth) Conns() []*TrueConn {
	var out []*TrueConn
	for k, tc := range t.byKey {
		if k == tc.ClientKey {
			out = append(out, tc)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientKey < out[j].ClientKey })
	return out
}

// Len returns the number of true connections.
func (t *Truth) Len() int { return t.n }

// Report compares attributed connections with the truth.
type Report struct {
	Conns         int            // connections written by the collector
	Truth         int            // true connections
	Attributable  int            // connections whose server someone held (the rest dialled a free address)
	Attributed    int            // of those, connections with both ends attributed
	Unattributed  map[string]int // unattributed endpoints by reason
	Misattributed []string       // one line per wrong name
	BothObserved  int            // true connections whose two ends both reported
	Joined        int            // of those, written as one joined connection
	Disagreements int            // joined connections flagged as disagreeing
	Unknown       int            // written connections the truth does not know
	PodEnds       int            // endpoints attributed to a pod
	PodEndsZoned  int            // of those, endpoints carrying their node's zone
	Missing       []string       // true connections never written (client keys)
}

// AttributedShare is the share of attributable connections with both ends attributed.
func (r *Report) AttributedShare() float64 { return share(r.Attributed, r.Attributable) }

// JoinedShare is the share of connections observed at both ends that were joined.
func (r *Report) JoinedShare() float64 { return share(r.Joined, r.BothObserved) }

func share(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

// Verify checks every written connection against the truth: a name that is not the truth's
// is a misattribution; an unattributed end is counted by reason.
func (t *Truth) Verify(conns []flow.Conn) *Report {
	r := &Report{Conns: len(conns), Truth: t.n, Unattributed: map[string]int{}}
	for k, tc := range t.byKey {
		if k == tc.ClientKey && tc.ServerObserved && tc.ServerKey != "" {
			r.BothObserved++
		}
	}
	for i := range conns {
		c := &conns[i]
		tc := t.byKey[c.ConnKey]
		if tc == nil {
			r.Unknown++
			continue
		}
		if c.Observed == "both" {
			r.Joined++
		}
		if c.JoinDisagreement {
			r.Disagreements++
		}
		ok := true
		for _, e := range []struct {
			side string
			ep   *flow.Endpoint
		}{{"client", &c.Client}, {"server", &c.Server}} {
			if e.ep.Kind == flow.EndpointUnattributed {
				r.Unattributed[string(e.ep.Reason)]++
				ok = false
				continue
			}
			if e.ep.Kind == flow.EndpointPod {
				r.PodEnds++
				if e.ep.Zone != "" {
					r.PodEndsZoned++
				}
			}
			if why := tc.wrong(e.side, e.ep); why != "" {
				r.Misattributed = append(r.Misattributed, fmt.Sprintf("%s %s %s:%d named %s: %s", c.ConnKey, e.side, e.ep.Addr, e.ep.Port, e.ep.Name(), why))
			}
		}
		if c.VIP != nil && c.VIP.Kind != flow.EndpointUnattributed && c.VIP.Namespace+"/"+c.VIP.Service != tc.Service {
			r.Misattributed = append(r.Misattributed, fmt.Sprintf("%s vip named %s, dialled %q", c.ConnKey, c.VIP.Name(), tc.Service))
		}
		if tc.NoHolder {
			continue
		}
		r.Attributable++
		if ok {
			r.Attributed++
		}
	}
	sort.Strings(r.Misattributed)
	r.Missing = t.Missing(conns)
	return r
}

// wrong explains why ep is not the truth's end of the connection ("" when it is).
func (tc *TrueConn) wrong(side string, ep *flow.Endpoint) string {
	uid, workload, zone := tc.ClientUID, tc.ClientWorkload, tc.ClientZone
	if side == "server" {
		uid, workload, zone = tc.ServerUID, tc.ServerWorkload, tc.ServerZone
		switch ep.Kind {
		case flow.EndpointNetwork:
			if ep.Network != tc.Network {
				return "the client dialled network " + fmt.Sprintf("%q", tc.Network)
			}
			return ""
		case flow.EndpointService:
			if ep.Namespace+"/"+ep.Service != tc.Service {
				return "the client dialled service " + fmt.Sprintf("%q", tc.Service)
			}
			return ""
		}
	}
	if ep.Kind != flow.EndpointPod {
		return "it was pod " + uid
	}
	if ep.PodUID != uid {
		return fmt.Sprintf("it was pod %q of %s", uid, workload)
	}
	if ep.Workload != "" && ep.Namespace+"/"+ep.Workload != workload {
		return "the pod belongs to " + workload
	}
	if ep.Zone != "" && ep.Zone != zone {
		return "the pod runs in zone " + zone
	}
	return ""
}

// Missing returns the client keys of true connections no written connection covers.
func (t *Truth) Missing(conns []flow.Conn) []string {
	seen := map[*TrueConn]bool{}
	for i := range conns {
		if tc := t.byKey[conns[i].ConnKey]; tc != nil {
			seen[tc] = true
		}
	}
	var out []string
	for k, tc := range t.byKey {
		if k == tc.ClientKey && !seen[tc] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
