package flow

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"time"
)

// AppendJSON appends the JSON form of r (the same document encoding/json produces for Record)
// to b, about ten times faster than json.Marshal: the exporter writes one per connection.
func AppendJSON(b []byte, r *Record) []byte {
	var e JSONEncoder
	return e.Append(b, r)
}

// JSONEncoder is AppendJSON with memory: it formats the date and time of day once per second
// for each of a record's two times, and a workload once per run of records of that workload
// (its strings are interned, so the comparison is mostly pointer equality). Not safe for
// concurrent use; the zero value is ready.
type JSONEncoder struct {
	start, end secondCache
	wl         Workload // the workload encoded last, and its JSON: records come in runs of one workload
	wlJSON     []byte
}

// Append appends the JSON form of r to b.
func (e *JSONEncoder) Append(b []byte, r *Record) []byte {
	b = append(b, `{"conn_id":`...)
	b = strconv.AppendUint(b, r.ConnID, 10)
	b = AppendJSONString(append(b, `,"family":`...), string(r.Family))
	b = appendAddr(append(b, `,"local_addr":"`...), r.LocalAddr)
	b = strconv.AppendUint(append(b, `","local_port":`...), uint64(r.LocalPort), 10)
	b = appendAddr(append(b, `,"remote_addr":"`...), r.RemoteAddr)
	b = strconv.AppendUint(append(b, `","remote_port":`...), uint64(r.RemotePort), 10)
	b = AppendJSONString(append(b, `,"direction":`...), string(r.Direction))
	b = strconv.AppendUint(append(b, `,"netns":`...), uint64(r.Netns), 10)
	b = strconv.AppendUint(append(b, `,"cgroup_id":`...), r.CgroupID, 10)
	if r.Workload != e.wl || e.wlJSON == nil {
		e.wl, e.wlJSON = r.Workload, appendWorkload(e.wlJSON[:0], &r.Workload)
	}
	b = append(append(b, `,"workload":`...), e.wlJSON...)
	b = e.start.appendTime(append(b, `,"start":`...), r.Start)
	b = e.end.appendTime(append(b, `,"end":`...), r.End)
	b = strconv.AppendBool(append(b, `,"interim":`...), r.Interim)
	b = strconv.AppendBool(append(b, `,"start_known":`...), r.StartKnown)
	b = strconv.AppendUint(append(b, `,"bytes_sent":`...), r.BytesSent, 10)
	b = strconv.AppendUint(append(b, `,"bytes_received":`...), r.BytesReceived, 10)
	b = strconv.AppendUint(append(b, `,"segs_sent":`...), r.SegsSent, 10)
	b = strconv.AppendUint(append(b, `,"segs_received":`...), r.SegsReceived, 10)
	b = strconv.AppendUint(append(b, `,"retransmits":`...), r.Retransmits, 10)
	b = strconv.AppendUint(append(b, `,"bytes_retransmitted":`...), r.BytesRetransmitted, 10)
	b = strconv.AppendUint(append(b, `,"srtt_us":`...), uint64(r.SrttUs), 10)
	b = strconv.AppendUint(append(b, `,"min_rtt_us":`...), uint64(r.MinRttUs), 10)
	b = strconv.AppendUint(append(b, `,"resets_sent":`...), uint64(r.ResetsSent), 10)
	b = strconv.AppendUint(append(b, `,"resets_received":`...), uint64(r.ResetsReceived), 10)
	b = AppendJSONString(append(b, `,"outcome":`...), string(r.Outcome))
	b = AppendJSONString(append(b, `,"close_state":`...), r.CloseState)
	if r.HostNetwork {
		b = append(b, `,"host_network":true`...)
	}
	if r.NatRemoteAddr.IsValid() {
		b = append(appendAddr(append(b, `,"nat_remote_addr":"`...), r.NatRemoteAddr), '"')
	}
	if r.NatRemotePort != 0 {
		b = strconv.AppendUint(append(b, `,"nat_remote_port":`...), uint64(r.NatRemotePort), 10)
	}
	return append(b, '}')
}

func appendWorkload(b []byte, w *Workload) []byte {
	b = AppendJSONString(append(b, `{"kind":`...), string(w.Kind))
	for _, f := range [...]struct{ k, v string }{
		{`,"pod_uid":`, w.PodUID}, {`,"container_id":`, w.ContainerID}, {`,"runtime":`, w.Runtime},
		{`,"unit":`, w.Unit}, {`,"cgroup_path":`, w.CgroupPath},
	} {
		if f.v != "" {
			b = AppendJSONString(append(b, f.k...), f.v)
		}
	}
	if w.Pid != 0 {
		b = strconv.AppendUint(append(b, `,"pid":`...), uint64(w.Pid), 10)
	}
	if w.Comm != "" {
		b = AppendJSONString(append(b, `,"comm":`...), w.Comm)
	}
	return append(b, '}')
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return b
	}
	return a.AppendTo(b)
}

// secondCache remembers "YYYY-MM-DDTHH:MM:SS" of the last whole second it formatted.
type secondCache struct {
	sec    int64
	valid  bool
	prefix [19]byte
}

// appendTime appends t in RFC 3339 with nanoseconds, as time.Time's MarshalJSON does; UTC
// times (all the exporter writes) take a fast path.
func (c *secondCache) appendTime(b []byte, t time.Time) []byte {
	if sec := t.Unix(); !c.valid || sec != c.sec || t.Location() != time.UTC {
		if t.Location() != time.UTC || t.Year() < 1000 || t.Year() > 9999 {
			b = append(b, '"')
			b = t.AppendFormat(b, time.RFC3339Nano)
			return append(b, '"')
		}
		y, mo, d := t.Date()
		h, mi, s := t.Clock()
		p := c.prefix[:0]
		p = appendDigits(p, y, 4)
		p = appendDigits(append(p, '-'), int(mo), 2)
		p = appendDigits(append(p, '-'), d, 2)
		p = appendDigits(append(p, 'T'), h, 2)
		p = appendDigits(append(p, ':'), mi, 2)
		appendDigits(append(p, ':'), s, 2)
		c.sec, c.valid = sec, true
	}
	b = append(b, '"')
	b = append(b, c.prefix[:]...)
	if ns := t.Nanosecond(); ns != 0 {
		digits := 9
		for ns%10 == 0 {
			ns /= 10
			digits--
		}
		b = appendDigits(append(b, '.'), ns, digits)
	}
	return append(b, 'Z', '"')
}

func appendDigits(b []byte, v, n int) []byte {
	var tmp [9]byte
	for i := n - 1; i >= 0; i-- {
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, tmp[:n]...)
}

// AppendJSONString appends s as a JSON string, as encoding/json writes it; plain printable
// ASCII takes the fast path.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
