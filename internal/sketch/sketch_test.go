package sketch

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func exactQuantile(vals []uint32, q float64) float64 {
	s := slices.Clone(vals)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))])
}

func TestQuantilesWithinRelativeAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func() uint32
	}{
		{"uniform 100us-10ms", func() uint32 { return 100 + rng.Uint32N(9900) }},
		{"lognormal", func() uint32 { return uint32(math.Exp(rng.NormFloat64()*1.5+7)) + 1 }},
		{"constant", func() uint32 { return 250 }},
		{"tiny", func() uint32 { return 1 + rng.Uint32N(3) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Sketch
			vals := make([]uint32, 20000)
			for i := range vals {
				vals[i] = tc.gen()
				s.Add(vals[i])
			}
			for _, q := range []float64{0, 0.5, 0.9, 0.99, 1} {
				want := exactQuantile(vals, q)
				got := float64(s.Quantile(q))
				if math.Abs(got-want) > RelativeAccuracy*want+1 {
					t.Errorf("q%.2f = %v, exact %v", q, got, want)
				}
			}
		})
	}
}

func TestMergeEqualsUnion(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var a, b, all Sketch
	for range 5000 {
		v := uint32(rng.ExpFloat64()*2000) + 1
		a.Add(v)
		all.Add(v)
		w := uint32(rng.ExpFloat64()*200000) + 1
		b.Add(w)
		all.Add(w)
	}
	var viaEnc Sketch
	for _, s := range []*Sketch{&a, &b} {
		enc, _ := s.MarshalBinary()
		if err := viaEnc.MergeEncoded(enc); err != nil {
			t.Fatal(err)
		}
	}
	a.Merge(&b)
	for _, q := range []float64{0.01, 0.5, 0.99} {
		if a.Quantile(q) != all.Quantile(q) || viaEnc.Quantile(q) != all.Quantile(q) {
			t.Errorf("q%v: merged %d, encoded-merged %d, union %d", q, a.Quantile(q), viaEnc.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != all.Count() || a.Mean() != all.Mean() {
		t.Errorf("count/mean %d/%v, want %d/%v", a.Count(), a.Mean(), all.Count(), all.Mean())
	}
}

func TestEncodingRoundTripAndCorruption(t *testing.T) {
	var s Sketch
	for _, v := range []uint32{0, 1, 5, 80, 80, 3000, 1 << 30} {
		s.Add(v)
	}
	enc, _ := s.MarshalBinary()
	var d Sketch
	if err := d.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if d.Count() != 6 || d.Quantile(0.5) != s.Quantile(0.5) || d.Quantile(1) != s.Quantile(1) {
		t.Errorf("round trip differs: %+v vs %+v", d, s)
	}
	for _, bad := range [][]byte{{9}, {1, 0x80}, enc[:len(enc)-1]} {
		if err := d.UnmarshalBinary(bad); err == nil {
			t.Errorf("UnmarshalBinary(%x) accepted corrupt input", bad)
		}
	}
}

func TestBoundedBins(t *testing.T) {
	var s Sketch
	for v := uint32(1); v < 1<<31; v *= 2 {
		s.Add(v)
	}
	if len(s.bins) > maxBins {
		t.Fatalf("%d bins", len(s.bins))
	}
}
