package depgraph

import (
	"encoding/json"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
)

// AppendJSON appends g encoded as JSON, as encoding/json would encode it (TestAppendJSON
// checks that), several times faster: the graph of a whole cluster has tens of thousands of
// edges.
func (g Graph) AppendJSON(b []byte) ([]byte, error) {
	err := g.encode(b, func(p []byte) error { b = p; return nil }, math.MaxInt)
	return b, err
}

// WriteJSON writes g to w as AppendJSON encodes it, in pieces of about 64 KiB, so that the
// megabytes of a whole cluster's graph are never held at once.
func (g Graph) WriteJSON(w io.Writer) error {
	return g.encode(make([]byte, 0, 72<<10), func(p []byte) error { _, err := w.Write(p); return err }, 64<<10)
}

// encode appends g to b, handing b to flush (then reusing it from empty) whenever it holds
// more than chunk bytes, and at the end.
func (g Graph) encode(b []byte, flush func([]byte) error, chunk int) error {
	nodes, err := json.Marshal(g.Nodes)
	if err != nil {
		return err
	}
	b = append(b, `{"from":`...)
	b = appendTime(b, g.From)
	b = append(b, `,"to":`...)
	b = appendTime(b, g.To)
	b = append(b, `,"nodes":`...)
	b = append(b, nodes...)
	b = append(b, `,"edges":[`...)
	for i := range g.Edges {
		if i > 0 {
			b = append(b, ',')
		}
		b = g.Edges[i].appendJSON(b)
		if len(b) > chunk {
			if err := flush(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	return flush(append(b, "]}"...))
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func (e *Edge) appendJSON(b []byte) []byte {
	b = append(b, `{"src":`...)
	b = flow.AppendJSONString(b, e.Src)
	b = append(b, `,"dst":`...)
	b = flow.AppendJSONString(b, e.Dst)
	if e.Service != "" {
		b = append(b, `,"service":`...)
		b = flow.AppendJSONString(b, e.Service)
	}
	b = append(b, `,"port":`...)
	b = strconv.AppendUint(b, uint64(e.Port), 10)
	b = append(b, `,"direction":`...)
	b = flow.AppendJSONString(b, e.Direction.String())
	c := &e.Counters
	for _, f := range []struct {
		name string
		v    uint64
	}{{`,"flows":`, c.Flows}, {`,"bytes_client_to_server":`, c.BytesClientToServer}, {`,"bytes_server_to_client":`, c.BytesServerToClient},
		{`,"opened":`, c.Opened}, {`,"closed":`, c.Closed}, {`,"refused":`, c.Refused}, {`,"timeout":`, c.Timeout},
		{`,"reset":`, c.Reset}, {`,"retransmits":`, c.Retransmits}, {`,"peak_bytes_per_minute":`, c.PeakBytesPerMinute}} {
		b = append(b, f.name...)
		b = strconv.AppendUint(b, f.v, 10)
	}
	b = append(b, `,"failure_rate":`...)
	b = appendFloat(b, e.FailureRate)
	b = append(b, `,"retransmit_rate":`...)
	b = appendFloat(b, e.RetransmitRate)
	if e.RTTp50us != 0 {
		b = append(b, `,"rtt_p50_us":`...)
		b = strconv.AppendUint(b, uint64(e.RTTp50us), 10)
	}
	if e.RTTp99us != 0 {
		b = append(b, `,"rtt_p99_us":`...)
		b = strconv.AppendUint(b, uint64(e.RTTp99us), 10)
	}
	b = append(b, `,"health":`...)
	b = flow.AppendJSONString(b, string(e.Health))
	return append(b, '}')
}

func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(b, f, 'e', -1, 64)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}
