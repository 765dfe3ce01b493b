package flowbatch

import (
	"testing"
)

// BenchmarkEncode is the exporter's encoding cost per batch of 1,000 flows.
func BenchmarkEncode(b *testing.B) {
	batch := &Batch{Header: Header{Major: 1, ExporterID: "node-a", BootID: "boot", Sequence: 1}, Records: SampleRecords(1000, testNow)}
	enc := NewEncoder()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = enc.AppendBody(buf[:0], batch)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/flow")
	b.ReportMetric(float64(len(buf))/1000, "B/flow")
}

// BenchmarkDecode is the collector's decode + validate cost per batch of 1,000 flows.
func BenchmarkDecode(b *testing.B) {
	data := benchBatch(b)
	lim := DefaultLimits()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data, lim, testNow); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/flow")
}

// BenchmarkFromPB is the conversion to flow.Record that consumers pay (after the ack).
func BenchmarkFromPB(b *testing.B) {
	data := benchBatch(b)
	pb, err := Decode(data, DefaultLimits(), testNow)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		FromPB(pb)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/flow")
}

// BenchmarkScan is the collector's check before acknowledging: validate in place.
func BenchmarkScan(b *testing.B) {
	data := benchBatch(b)
	lim := DefaultLimits()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Scan(data, lim, testNow); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/flow")
}

// BenchmarkUnmarshal is what consumers pay per flow to get flow.Records from the spool.
func BenchmarkUnmarshal(b *testing.B) {
	data := benchBatch(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/flow")
}

// benchBatch is an encoded batch of 1,000 sample flows.
func benchBatch(b *testing.B) []byte {
	b.Helper()
	batch := &Batch{Header: Header{Major: 1, ExporterID: "node-a", BootID: "boot", Sequence: 1}, Records: SampleRecords(1000, testNow)}
	data, err := NewEncoder().Marshal(batch)
	if err != nil {
		b.Fatal(err)
	}
	return data
}
