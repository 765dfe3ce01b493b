package flowbatch

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
	"github.com/flowscope/flowscope/internal/flow"
)

// checkCanonicalRecords fails unless every record of an encoded batch is byte for byte what
// proto.MarshalOptions{Deterministic: true} produces for the same message.
func checkCanonicalRecords(t testing.TB, data []byte) {
	t.Helper()
	for i := 0; len(data) > 0; {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			t.Fatalf("bad tag at %d", len(data))
		}
		data = data[n:]
		m := protowire.ConsumeFieldValue(num, typ, data)
		if m < 0 {
			t.Fatalf("bad field %d", num)
		}
		field := data[:m]
		data = data[m:]
		if num != 10 || typ != protowire.BytesType {
			continue
		}
		got, _ := protowire.ConsumeBytes(field)
		r := &flowv1.FlowRecord{}
		if err := proto.Unmarshal(got, r); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("record %d encoded as\n%x\nprotobuf encodes\n%x", i, got, want)
		}
		i++
	}
}

func TestRecordsEncodeAsProtobufDoes(t *testing.T) {
	b := sampleBatch()
	b.Records = append(b.Records, SampleRecords(300, testNow)...)
	r := &b.Records[5]
	r.BytesSent, r.Retransmits, r.SegsSent, r.BytesRetransmitted = 1<<63+5, 1<<60, 1<<50, 1<<35
	r.SegsReceived, r.BytesReceived = 1<<14, 1<<21
	r.SrttUs, r.MinRttUs, r.ResetsSent, r.ResetsReceived = 1<<32-1, 1<<28, 1<<21, 127
	r.LocalAddr, r.RemoteAddr = b.Records[1].LocalAddr, b.Records[1].RemoteAddr
	r.Family, r.CloseState = flow.IPv6, "A_STATE_NAME_NOT_KNOWN_TO_TCP_XY"
	r.NatRemoteAddr, r.NatRemotePort = b.Records[1].RemoteAddr, 65535
	r.ConnID, r.LocalPort, r.RemotePort = 1<<64-1, 65535, 128
	b.Records[6].CloseState = ""    // no state at all
	b.Records[7].Family = flow.IPv4 // a v4 family with a v6 address
	b.Records[7].LocalAddr = b.Records[1].LocalAddr
	b.Records[8].Direction = ""                           // unset: sent as unknown
	b.Records[9].Start = b.Records[9].End.Add(1)          // a start after the end
	b.Records[10].Start = time.Time{}                     // no start
	b.Records[11].End = b.Records[11].End.Add(-time.Hour) // a negative delta to the next
	data, err := NewEncoder().Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	checkCanonicalRecords(t, data)
}

// TestScanFieldForms: unknown fields are skipped; known fields in the wrong wire type or out
// of range are refused (stricter than protobuf, which keeps the former as unknown fields and
// truncates the latter); whatever Scan accepts, the full decode accepts.
func TestScanFieldForms(t *testing.T) {
	tag := func(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }
	cases := []struct {
		name  string
		extra []byte
		ok    bool
	}{
		{"unknown varint", protowire.AppendVarint(tag(30, protowire.VarintType), 1<<40), true},
		{"unknown bytes", protowire.AppendBytes(tag(100, protowire.BytesType), make([]byte, 200)), true},
		{"unknown three-byte tag", protowire.AppendVarint(tag(5000, protowire.VarintType), 7), true},
		{"unknown fixed64", protowire.AppendFixed64(tag(28, protowire.Fixed64Type), 7), true},
		{"unknown group", append(tag(40, protowire.StartGroupType), tag(40, protowire.EndGroupType)...), true},
		{"outcome as bytes", protowire.AppendBytes(tag(22, protowire.BytesType), []byte{1}), false},
		{"address as varint", protowire.AppendVarint(tag(2, protowire.VarintType), 1), false},
		{"port as fixed32", protowire.AppendFixed32(tag(3, protowire.Fixed32Type), 1), false},
		{"field zero", []byte{0x00, 0x01}, false},
		{"truncated varint", append(tag(12, protowire.VarintType), 0x80), false},
		{"two-byte port", protowire.AppendVarint(tag(27, protowire.VarintType), 1<<16), false},
		{"large outcome", protowire.AppendVarint(tag(22, protowire.VarintType), 1<<33), false},
	}
	data, err := NewEncoder().Marshal(sampleBatch())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pb := &flowv1.Batch{}
			if err := proto.Unmarshal(data, pb); err != nil {
				t.Fatal(err)
			}
			pb.Records[0].ProtoReflect().SetUnknown(tc.extra)
			bad, err := proto.Marshal(pb)
			if err != nil {
				t.Fatal(err)
			}
			_, serr := Scan(bad, DefaultLimits(), testNow)
			_, derr := Decode(bad, DefaultLimits(), testNow)
			if (serr == nil) != tc.ok || (serr == nil && derr != nil) {
				t.Errorf("Scan: %v, Decode: %v, want Scan ok=%v", serr, derr, tc.ok)
			}
		})
	}
}

// TestOriginsWithinOneCgroup: records of one cgroup with different processes, namespaces or
// host networking keep their own workload identities, over several batches of one Encoder.
func TestOriginsWithinOneCgroup(t *testing.T) {
	enc := NewEncoder()
	for round := range 3 {
		b := &Batch{Header: Header{Major: 1, ExporterID: "e", BootID: "b", Sequence: uint64(round + 1)},
			Records: SampleRecords(12, testNow)}
		for i := range b.Records {
			r := &b.Records[i]
			r.CgroupID = 7000
			r.Workload.Pid, r.Workload.Comm = uint32(i%3), fmt.Sprint("comm", i%3+round)
			r.Netns += uint32(i % 2)
			r.HostNetwork = i%4 == 0
		}
		checkRoundTrip(t, enc, b)
	}
}

// batchEqual are the go-cmp options that compare batches by value.
var batchEqual = []cmp.Option{cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b })}

// checkRoundTrip encodes b with enc, decodes it and fails unless the result equals b; it
// returns the encoded batch.
func checkRoundTrip(t *testing.T, enc *Encoder, b *Batch) []byte {
	t.Helper()
	data, err := enc.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := Decode(data, DefaultLimits(), testNow)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if diff := cmp.Diff(b, FromPB(pb), batchEqual...); diff != "" {
		t.Fatalf("round trip (-in +out):\n%s", diff)
	}
	return data
}

// TestRecordWriterMatchesAppendBody: records added one at a time give AppendBody's bytes.
func TestRecordWriterMatchesAppendBody(t *testing.T) {
	w := NewRecordWriter()
	for _, n := range []int{0, 1, 3, 300} {
		b := sampleBatch()
		b.Records = append(b.Records, SampleRecords(n, testNow)...)[:n]
		b.Aggregates, b.Heartbeat = nil, nil
		want, err := NewEncoder().AppendBody([]byte("prefix"), b)
		if err != nil {
			t.Fatal(err)
		}
		w.Begin([]byte("prefix"), b.Header)
		for i := range b.Records {
			w.Add(&b.Records[i])
		}
		if w.Len() != n {
			t.Errorf("Len %d, want %d", w.Len(), n)
		}
		got, err := w.End()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%d records: RecordWriter and AppendBody differ", n)
		}
	}
}
