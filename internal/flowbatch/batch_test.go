package flowbatch

import (
	"google.golang.org/protobuf/proto"
	"net/netip"
	"testing"
	"time"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/flow"
)

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC)

func sampleBatch() *Batch {
	recs := SampleRecords(3, testNow)
	recs[1].Family = flow.IPv6
	recs[1].LocalAddr = netip.MustParseAddr("fd00::1")
	recs[1].RemoteAddr = netip.MustParseAddr("fd00::2:3")
	recs[1].Direction = flow.Server
	recs[1].Interim, recs[1].Outcome, recs[1].CloseState = true, flow.Open, "ESTABLISHED"
	recs[1].StartKnown = false
	recs[1].Start = testNow.Add(-90 * 24 * time.Hour)
	recs[1].Workload = flow.Workload{Kind: flow.KindUnit, Unit: "nginx.service", CgroupPath: "/system.slice/nginx.service", Pid: 42, Comm: "nginx"}
	recs[1].HostNetwork = true
	// a Service VIP translated by conntrack
	recs[0].NatRemoteAddr, recs[0].NatRemotePort = netip.MustParseAddr("10.244.3.7"), 8443

	recs[2].Family = flow.IPv6 // a v4-mapped address on a v6 socket
	recs[2].LocalAddr = netip.MustParseAddr("::ffff:10.0.0.1")
	recs[2].RemoteAddr = netip.MustParseAddr("::ffff:10.0.0.2")
	recs[2].CloseState = "SOMETHING_NEW"
	recs[2].Outcome, recs[2].Retransmits, recs[2].BytesRetransmitted = flow.Reset, 3, 4000
	recs[2].ResetsReceived = 1
	return &Batch{
		Header:   Header{Major: 1, ExporterID: "node-a", NodeName: "node-a", BootID: "boot-1", Sequence: 7},
		Counters: []Counter{{Name: "ring_lost", Value: 2}, {Name: "shipper_dropped_records", Value: 5}},
		Records:  recs,
		Aggregates: []Aggregate{{
			Workload: recs[0].Workload, Netns: recs[0].Netns, CgroupID: recs[0].CgroupID,
			LocalAddr: recs[0].LocalAddr, RemoteAddr: netip.MustParseAddr("192.0.2.9"), RemotePort: 443,
			Direction: flow.Client, Flows: 12, FirstStart: testNow.Add(-2 * time.Second), LastEnd: testNow.Add(-time.Second),
			BytesSent: 100, BytesReceived: 200, SegsSent: 10, SegsReceived: 20, ResetsSent: 1, SrttUsSum: 600,
			Outcomes: map[flow.Outcome]uint64{flow.OK: 11, flow.Aborted: 1},
		}},
		Heartbeat: &Heartbeat{Node: "node-a", Time: testNow, Complete: true, Ownerships: []Ownership{
			{Addr: netip.MustParseAddr("10.1.0.2"), Workload: recs[0].Workload, Namespace: "shop", PodName: "cart-1",
				Netns: recs[0].Netns, From: testNow.Add(-time.Hour)},
			{Addr: netip.MustParseAddr("fd00::1"), Workload: recs[1].Workload, From: testNow.Add(-time.Hour), To: testNow.Add(-time.Minute)},
			{Addr: netip.MustParseAddr("192.168.0.10"), Port: 9100, Workload: recs[0].Workload, Namespace: "monitoring", PodName: "node-exporter-x", From: testNow.Add(-time.Hour)},
		}},
	}
}

func TestRoundTrip(t *testing.T) {
	checkRoundTrip(t, NewEncoder(), sampleBatch())
}

func TestHeaderAppendedLater(t *testing.T) {
	in := sampleBatch()
	enc := NewEncoder()
	body, err := enc.AppendBody(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	data, err := AppendHeader(body, 99, []Counter{{Name: "x", Value: 1}})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := Decode(data, DefaultLimits(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if pb.Sequence != 99 || len(pb.Counters) != 1 || len(pb.Records) != 3 {
		t.Errorf("got seq %d counters %v records %d", pb.Sequence, pb.Counters, len(pb.Records))
	}
}

func TestBytesPerFlow(t *testing.T) {
	b := &Batch{Header: Header{Major: 1, ExporterID: "node-a", BootID: "0d6a3c4e-1111-4222-8333-944445555666", Sequence: 123456},
		Records: SampleRecords(1000, testNow)}
	data, err := NewEncoder().Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	per := float64(len(data)) / 1000
	t.Logf("%d bytes for 1000 flows: %.1f B/flow", len(data), per)
	if per > 60 {
		t.Errorf("%.1f bytes per flow, want <= 60", per)
	}
}

func TestRejections(t *testing.T) {
	good := func() *flowv1.Batch {
		data, err := NewEncoder().Marshal(sampleBatch())
		if err != nil {
			t.Fatal(err)
		}
		pb, err := Decode(data, DefaultLimits(), testNow)
		if err != nil {
			t.Fatal(err)
		}
		return pb
	}
	cases := rejectionCases()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pb := good()
			tc.mutate(pb)
			err := Validate(pb, DefaultLimits(), testNow)
			if got := ReasonOf(err); err == nil || got != tc.want {
				t.Errorf("got %v (%v), want %v", got, err, tc.want)
			}
		})
	}
	if _, err := Decode([]byte{0xff, 0xff, 0xff}, DefaultLimits(), testNow); ReasonOf(err) != flowv1.RejectReason_REJECT_REASON_MALFORMED {
		t.Errorf("garbage: %v", err)
	}
}

// TestLargeValuesRoundTrip covers records longer than 127 bytes (two-byte lengths).
func TestLargeValuesRoundTrip(t *testing.T) {
	b := sampleBatch()
	b.Records = append(b.Records, SampleRecords(300, testNow)...)
	b.Records[5].BytesSent, b.Records[5].Retransmits, b.Records[5].SegsSent = 1<<62, 1<<60, 1<<50
	b.Records[5].LocalAddr, b.Records[5].RemoteAddr = b.Records[1].LocalAddr, b.Records[1].RemoteAddr
	b.Records[5].Family, b.Records[5].CloseState = flow.IPv6, "A_STATE_NAME_NOT_KNOWN_TO_TCP_XY"
	data := checkRoundTrip(t, NewEncoder(), b)
	if _, err := Scan(data, DefaultLimits(), testNow); err != nil {
		t.Errorf("scan: %v", err)
	}
}

func TestScanAgreesWithValidate(t *testing.T) {
	data, err := NewEncoder().Marshal(sampleBatch())
	if err != nil {
		t.Fatal(err)
	}
	s, err := Scan(data, DefaultLimits(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if s.Sequence != 7 || s.Records != 3 || s.Aggregates != 1 || s.Ownerships != 3 || s.ExporterID != "node-a" {
		t.Errorf("summary %+v", s)
	}
	for _, tc := range rejectionCases() {
		t.Run(tc.name, func(t *testing.T) {
			pb, err := Decode(data, DefaultLimits(), testNow)
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(pb)
			bad, err := proto.Marshal(pb)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Scan(bad, DefaultLimits(), testNow)
			if got := ReasonOf(err); err == nil || got != tc.want {
				t.Errorf("Scan: got %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

func rejectionCases() []struct {
	name   string
	mutate func(*flowv1.Batch)
	want   flowv1.RejectReason
} {
	return []struct {
		name   string
		mutate func(*flowv1.Batch)
		want   flowv1.RejectReason
	}{
		{"wrong major", func(b *flowv1.Batch) { b.MajorVersion = 2 }, flowv1.RejectReason_REJECT_REASON_VERSION},
		{"no version", func(b *flowv1.Batch) { b.MajorVersion = 0 }, flowv1.RejectReason_REJECT_REASON_VERSION},
		{"no exporter", func(b *flowv1.Batch) { b.ExporterId = "" }, flowv1.RejectReason_REJECT_REASON_INVALID},
		{"no sequence", func(b *flowv1.Batch) { b.Sequence = 0 }, flowv1.RejectReason_REJECT_REASON_INVALID},
		{"bad addr", func(b *flowv1.Batch) { b.Records[0].LocalAddr = []byte{1, 2, 3} }, flowv1.RejectReason_REJECT_REASON_INVALID},
		{"bad port", func(b *flowv1.Batch) { b.Records[0].RemotePort = 70000 }, flowv1.RejectReason_REJECT_REASON_INVALID},
		{"bad origin", func(b *flowv1.Batch) { b.Records[0].Origin = 99 }, flowv1.RejectReason_REJECT_REASON_INVALID},
		{"bad enum", func(b *flowv1.Batch) { b.Records[0].Outcome = 77 }, flowv1.RejectReason_REJECT_REASON_INVALID},
		{"future", func(b *flowv1.Batch) { b.BaseTimeUnixNano = testNow.Add(time.Hour).UnixNano() }, flowv1.RejectReason_REJECT_REASON_TIMESTAMP},
		{"ancient", func(b *flowv1.Batch) { b.BaseTimeUnixNano = 1 }, flowv1.RejectReason_REJECT_REASON_TIMESTAMP},
		{"endless duration", func(b *flowv1.Batch) { b.Records[0].DurationNs = 1 << 62 }, flowv1.RejectReason_REJECT_REASON_TIMESTAMP},
		{"huge string", func(b *flowv1.Batch) { b.NodeName = string(make([]byte, 5000)) }, flowv1.RejectReason_REJECT_REASON_TOO_LARGE},
		{"bad ownership", func(b *flowv1.Batch) { b.Heartbeat.Ownerships[0].Addr = nil }, flowv1.RejectReason_REJECT_REASON_INVALID},
		{"bad ownership port", func(b *flowv1.Batch) { b.Heartbeat.Ownerships[2].Port = 70000 }, flowv1.RejectReason_REJECT_REASON_INVALID},
		{"bad NAT addr", func(b *flowv1.Batch) { b.Records[0].NatRemoteAddr = []byte{1, 2} }, flowv1.RejectReason_REJECT_REASON_INVALID},
		{"bad NAT port", func(b *flowv1.Batch) { b.Records[0].NatRemotePort = 70000 }, flowv1.RejectReason_REJECT_REASON_INVALID},
	}
}

func TestEnumSwitchesAgreeWithMaps(t *testing.T) {
	for k, v := range directionToPB {
		if directionPB(k) != v {
			t.Errorf("direction %s", k)
		}
	}
	for k, v := range outcomeToPB {
		if outcomePB(k) != v {
			t.Errorf("outcome %s", k)
		}
	}
	for k, v := range stateToPB {
		if got, ok := statePB(k); !ok || got != v {
			t.Errorf("state %s", k)
		}
	}
}
