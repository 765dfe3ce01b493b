package flowbatch

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecode: any input is rejected cleanly or decodes into a batch that converts, encodes
// and decodes again.
func FuzzDecode(f *testing.F) {
	data, err := NewEncoder().Marshal(sampleBatch())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte{})
	lim := DefaultLimits()
	lim.MaxBytes = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		pb, err := Decode(data, lim, testNow)
		if err != nil {
			if _, ok := err.(*RejectError); !ok && ReasonOf(err) == 0 {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		b := FromPB(pb)
		again, err := NewEncoder().Marshal(b)
		if err != nil {
			t.Fatalf("re-encoding a valid batch: %v", err)
		}
		if _, err := Decode(again, lim, testNow); err != nil {
			t.Fatalf("a valid batch re-encoded does not decode: %v", err)
		}
		checkCanonicalRecords(t, again)
	})
}

// FuzzScan: whatever the collector's fast Scan accepts, the full Decode (what consumers run)
// accepts too, with the same identity and sizes.
func FuzzScan(f *testing.F) {
	data, err := NewEncoder().Marshal(sampleBatch())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	lim := DefaultLimits()
	lim.MaxBytes = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Scan(data, lim, testNow)
		if err != nil {
			if ReasonOf(err) == 0 {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		pb, err := Decode(data, lim, testNow)
		if err != nil {
			t.Fatalf("Scan accepted what Decode refuses: %v", err)
		}
		if s.ExporterID != pb.ExporterId || s.BootID != pb.BootId || s.Sequence != pb.Sequence ||
			s.Records != len(pb.Records) || s.Aggregates != len(pb.Aggregates) {
			t.Fatalf("Scan %+v disagrees with Decode", s)
		}
	})
}

// FuzzUnmarshal: the consumers' fast decoder never panics, and on everything Scan accepts it
// gives exactly what Decode + FromPB give.
func FuzzUnmarshal(f *testing.F) {
	data, err := NewEncoder().Marshal(sampleBatch())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	lim := DefaultLimits()
	lim.MaxBytes = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Unmarshal(data)
		if _, serr := Scan(data, lim, testNow); serr != nil {
			return
		}
		if err != nil {
			t.Fatalf("Scan accepted what Unmarshal refuses: %v", err)
		}
		pb, err := Decode(data, lim, testNow)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if diff := cmp.Diff(FromPB(pb), got, batchEqual...); diff != "" {
			t.Fatalf("Unmarshal differs from Decode+FromPB (-want +got):\n%s", diff)
		}
	})
}
