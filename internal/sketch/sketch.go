// Package sketch provides a mergeable latency distribution: logarithmic buckets with a bounded
// relative error (the DDSketch idea), so that per-minute RTT distributions roll up into hours and
// across edges and still give correct percentiles.
package sketch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// RelativeAccuracy is the bound on the relative error of every quantile the sketch returns.
const RelativeAccuracy = 0.02

var (
	gamma    = (1 + RelativeAccuracy) / (1 - RelativeAccuracy)
	logGamma = math.Log(gamma)
)

// maxBins bounds a sketch's memory: values spanning more than maxBins buckets (a range of
// gamma^maxBins, about 10^17 for 1000 bins) collapse their lowest buckets into one.
const maxBins = 1000

// Sketch is a distribution of positive integer values (microseconds). The zero value is an
// empty sketch ready to use. It is not safe for concurrent use.
type Sketch struct {
	offset int32    // bucket index of bins[0]
	bins   []uint64 // counts of consecutive buckets
	count  uint64
	sum    uint64
}

func index(v uint32) int32 {
	if v <= 1 {
		return 0
	}
	return int32(math.Ceil(math.Log(float64(v)) / logGamma))
}

// value is the representative value of bucket i: the value whose relative distance to every
// value of the bucket is at most RelativeAccuracy.
func value(i int32) float64 {
	if i <= 0 {
		return 1
	}
	return 2 * math.Pow(gamma, float64(i)) / (gamma + 1)
}

// Add records one value; zero (unknown) is ignored.
func (s *Sketch) Add(v uint32) { s.AddN(v, 1) }

// AddN records value v n times; zero values are ignored.
func (s *Sketch) AddN(v uint32, n uint64) {
	if v == 0 || n == 0 {
		return
	}
	s.addBin(index(v), n)
	s.count += n
	s.sum += uint64(v) * n
}

func (s *Sketch) addBin(i int32, n uint64) {
	if len(s.bins) == 0 {
		s.offset = i
		s.bins = append(s.bins[:0], n)
		return
	}
	if i < s.offset {
		grow := int(s.offset - i)
		if len(s.bins)+grow > maxBins {
			// Collapse: keep the higher buckets exact, count the low outlier in the lowest bucket.
			s.bins[0] += n
			return
		}
		nb := make([]uint64, len(s.bins)+grow, len(s.bins)+grow+8)
		copy(nb[grow:], s.bins)
		s.bins, s.offset = nb, i
	}
	pos := int(i - s.offset)
	if pos >= len(s.bins) {
		if pos >= maxBins {
			s.collapseLow(pos - maxBins + 1)
			pos = int(i - s.offset)
		}
		for len(s.bins) <= pos {
			s.bins = append(s.bins, 0)
		}
	}
	s.bins[pos] += n
}

// collapseLow merges the k lowest buckets into the next one.
func (s *Sketch) collapseLow(k int) {
	if k >= len(s.bins) {
		k = len(s.bins) - 1
	}
	var moved uint64
	for _, c := range s.bins[:k] {
		moved += c
	}
	s.bins = append(s.bins[:0], s.bins[k:]...)
	s.bins[0] += moved
	s.offset += int32(k)
}

// Merge adds every value recorded in o to s.
func (s *Sketch) Merge(o *Sketch) {
	if o == nil || o.count == 0 {
		return
	}
	for j, c := range o.bins {
		if c != 0 {
			s.addBin(o.offset+int32(j), c)
		}
	}
	s.count += o.count
	s.sum += o.sum
}

// Count is the number of values recorded.
func (s *Sketch) Count() uint64 { return s.count }

// Mean is the exact mean of the recorded values, 0 when empty.
func (s *Sketch) Mean() float64 {
	if s.count == 0 {
		return 0
	}
	return float64(s.sum) / float64(s.count)
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) within RelativeAccuracy, 0 when empty.
func (s *Sketch) Quantile(q float64) uint32 {
	if s.count == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(q * float64(s.count-1))
	var seen uint64
	for j, c := range s.bins {
		seen += c
		if seen > rank {
			return uint32(math.Round(value(s.offset + int32(j))))
		}
	}
	return uint32(math.Round(value(s.offset + int32(len(s.bins)-1))))
}

const encodingVersion = 1

// MarshalBinary encodes the sketch compactly: version, count, sum, offset, then the bucket
// counts as varints.
func (s *Sketch) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil), nil }

// AppendBinary appends the encoding of s to b.
func (s *Sketch) AppendBinary(b []byte) []byte {
	b = append(b, encodingVersion)
	b = binary.AppendUvarint(b, s.count)
	b = binary.AppendUvarint(b, s.sum)
	b = binary.AppendVarint(b, int64(s.offset))
	b = binary.AppendUvarint(b, uint64(len(s.bins)))
	for _, c := range s.bins {
		b = binary.AppendUvarint(b, c)
	}
	return b
}

var errCorrupt = errors.New("corrupt sketch encoding")

// UnmarshalBinary replaces s with the decoded sketch. An empty input is an empty sketch.
func (s *Sketch) UnmarshalBinary(b []byte) error {
	*s = Sketch{bins: s.bins[:0]}
	if len(b) == 0 {
		return nil
	}
	if b[0] != encodingVersion {
		return fmt.Errorf("sketch encoding version %d: %w", b[0], errCorrupt)
	}
	r := reader{b: b[1:]}
	s.count = r.uvarint()
	s.sum = r.uvarint()
	s.offset = int32(r.varint())
	n := r.uvarint()
	if r.err != nil || n > maxBins {
		return errCorrupt
	}
	for range n {
		s.bins = append(s.bins, r.uvarint())
	}
	if r.err != nil {
		return errCorrupt
	}
	return nil
}

// MergeEncoded merges an encoded sketch into s without allocating a second sketch's buckets.
func (s *Sketch) MergeEncoded(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if b[0] != encodingVersion {
		return fmt.Errorf("sketch encoding version %d: %w", b[0], errCorrupt)
	}
	r := reader{b: b[1:]}
	count, sum, off, n := r.uvarint(), r.uvarint(), int32(r.varint()), r.uvarint()
	if r.err != nil || n > maxBins {
		return errCorrupt
	}
	for j := range int32(n) {
		if c := r.uvarint(); c != 0 {
			s.addBin(off+j, c)
		}
	}
	if r.err != nil {
		return errCorrupt
	}
	s.count += count
	s.sum += sum
	return nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}
