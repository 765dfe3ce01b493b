package ownership

// decideOne is decideScan for the ranges nearly every lookup meets: up to the moment, they
// all name one owner (an address's exporter and Kubernetes ranges share their pod's owner,
// see internDefinite). Each of the scan's sets of candidates then holds that owner or
// nothing, so one pass that notes which, and their sources, decides as the scan does — with
// no sets to fill and no identities to compare. It makes the scan's comparisons in the
// scan's order, so sp narrows as it would (TestDecideOneAsScan). ok is false when a second
// owner turns up (or there is no range): the caller scans then (sp narrowed by the
// comparisons made so far, which stays exact: a comparison only narrows the span to moments
// that compare the same).
func (s *Store) decideOne(e *entry, at int64, final bool, sp *span) (a ans, ok bool) {
	rs := e.rs()
	if len(rs) == 0 {
		return ans{}, false
	}
	skew := int64(s.cfg.SkewTolerance)
	owner := rs[0].owner
	var st oneScan
	n := len(rs) // the ranges that start by the moment (within the skew)
	for i := range rs {
		x := &rs[i]
		if sp.below(at, x.from-skew) {
			n = i
			break
		}
		if x.owner != owner {
			return ans{}, false
		}
		if x.src.Definite() {
			st |= oneDefinite
			if sp.atMost(at, x.to+skew) && !sp.below(at, x.from+skew) && sp.atMost(at, x.to-skew) {
				st |= oneCovering | oneScan(x.src)<<oneCovSrc
			}
			continue
		}
		if x.to == open || sp.atMost(at, x.to+skew) {
			st |= onePossible | oneScan(x.src)<<onePossSrc
		}
	}
	return s.decidedOne(rs[:n], n < len(rs), owner, st, at, final, sp), true
}

// oneScan is what decideOne's pass found, in one word (the loop's other values keep their
// registers): which of the scan's sets would hold the owner, and the sources of the covering
// and the possible ranges.
type oneScan uint32

const (
	oneCovering oneScan = 1 << iota
	onePossible
	oneDefinite
	oneCovSrc  = 8  // the covering ranges' sources, shifted
	onePossSrc = 16 // the possible ranges' sources, shifted
)

// decidedOne decides as decideScan does from what decideOne's pass found over the ranges rs
// (those that start by the moment; later: some start after it).
func (s *Store) decidedOne(rs []rng, later bool, owner ownerID, st oneScan, at int64, final bool, sp *span) ans {
	kubeDone := s.kubeDone(at, sp)
	covSrc, possSrc := Source(st>>oneCovSrc), Source(st>>onePossSrc)
	switch {
	case st&oneCovering != 0:
		if s.kubeEnabled && !kubeDone && !final {
			return ans{bits: ansPending}
		}
		if kubeDone && st&onePossible != 0 {
			covSrc |= possSrc
		}
		return s.answer(owner, covSrc, true)
	case st&oneDefinite != 0 && !final:
		return ans{bits: ansPending} // as decideScan: a late heartbeat may still cover the moment
	case st&onePossible != 0 && !kubeDone && !final:
		return ans{bits: ansPending}
	case st&onePossible != 0 && !kubeDone:
		return ans{reason: rStale}
	case st&onePossible != 0:
		return s.answer(owner, possSrc, false)
	case st&oneDefinite != 0 && !later:
		lastTo, lastOrig := int64(-1<<63), uint16(0) // the latest definite range (as decideScan finds it)
		for i := range rs {
			if x := &rs[i]; x.src.Definite() && x.to > lastTo {
				lastTo, lastOrig = x.to, x.origin
			}
		}
		if !sp.atMost(at, lastTo) && !sp.atMost(at, s.originSeen[lastOrig]) {
			return ans{reason: rStale} // the exporter went silent before the moment
		}
	}
	return ans{reason: rGap}
}
