package flowbatch

import (
	"fmt"
	"math"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
)

type timeCheck struct {
	lim Limits
	now int64
}

// at checks that an absolute time is within [now-MaxAge, now+MaxSkew].
func (v timeCheck) at(what string, t int64) error {
	if t < v.now-int64(v.lim.MaxAge) || t > v.now+int64(v.lim.MaxSkew) {
		return reject(flowv1.RejectReason_REJECT_REASON_TIMESTAMP, "implausible %s %d (now %d)", what, t, v.now)
	}
	return nil
}

// offset checks base+off without overflow and returns the sum.
func (v timeCheck) offset(what string, base, off int64) (int64, error) {
	span := int64(v.lim.MaxAge + v.lim.MaxSkew)
	if off > span || off < -span {
		return 0, reject(flowv1.RejectReason_REJECT_REASON_TIMESTAMP, "%s offset %d out of range", what, off)
	}
	t := base + off
	return t, v.at(what, t)
}

func (v timeCheck) duration(d uint64) error {
	if d > uint64(v.lim.MaxDuration) {
		return reject(flowv1.RejectReason_REJECT_REASON_TIMESTAMP, "implausible duration %dns", d)
	}
	return nil
}

func validAddr(b []byte) bool { return len(b) == 4 || len(b) == 16 }

// validateRecord checks r, whose predecessor ended at prev, and returns r's end.
func validateRecord(pb *flowv1.Batch, r *flowv1.FlowRecord, v timeCheck, prev int64) (int64, error) {
	invalid := flowv1.RejectReason_REJECT_REASON_INVALID
	switch {
	case !validAddr(r.LocalAddr) || !validAddr(r.RemoteAddr):
		return 0, reject(invalid, "addresses must be 4 or 16 bytes")
	case len(r.NatRemoteAddr) != 0 && !validAddr(r.NatRemoteAddr):
		return 0, reject(invalid, "NAT address must be 4 or 16 bytes")
	case r.LocalPort > math.MaxUint16 || r.RemotePort > math.MaxUint16 || r.NatRemotePort > math.MaxUint16:
		return 0, reject(invalid, "port out of range")
	case int(r.Origin) >= len(pb.Origins):
		return 0, reject(invalid, "workload index %d out of %d", r.Origin, len(pb.Origins))
	case !knownEnum(flowv1.Direction_name, int32(r.Direction)) || r.Direction == 0:
		return 0, reject(invalid, "unknown direction %d", r.Direction)
	case !knownEnum(flowv1.Outcome_name, int32(r.Outcome)):
		return 0, reject(invalid, "unknown outcome %d", r.Outcome)
	case !knownEnum(flowv1.TCPState_name, int32(r.CloseState)):
		return 0, reject(invalid, "unknown TCP state %d", r.CloseState)
	case !knownEnum(flowv1.Family_name, int32(r.Family)):
		return 0, reject(invalid, "unknown family %d", r.Family)
	case len(r.CloseStateName) > 32:
		return 0, reject(flowv1.RejectReason_REJECT_REASON_TOO_LARGE, "close state name too long")
	}
	end, err := v.offset("end", prev, r.EndDeltaNs)
	if err != nil {
		return 0, err
	}
	return end, v.duration(r.DurationNs)
}

func validateAggregate(pb *flowv1.Batch, a *flowv1.FlowAggregate, v timeCheck) error {
	invalid := flowv1.RejectReason_REJECT_REASON_INVALID
	switch {
	case !validAddr(a.RemoteAddr) || (len(a.LocalAddr) != 0 && !validAddr(a.LocalAddr)):
		return reject(invalid, "addresses must be 4 or 16 bytes")
	case a.RemotePort > math.MaxUint16:
		return reject(invalid, "port out of range")
	case int(a.Origin) >= len(pb.Origins):
		return reject(invalid, "workload index %d out of %d", a.Origin, len(pb.Origins))
	case !knownEnum(flowv1.Direction_name, int32(a.Direction)) || a.Direction == 0:
		return reject(invalid, "unknown direction %d", a.Direction)
	case a.Flows == 0:
		return reject(invalid, "aggregate of zero flows")
	case len(a.Outcomes) > len(flowv1.Outcome_name):
		return reject(invalid, "too many outcome counts")
	}
	for _, o := range a.Outcomes {
		if !knownEnum(flowv1.Outcome_name, int32(o.Outcome)) {
			return reject(invalid, "unknown outcome %d", o.Outcome)
		}
	}
	if _, err := v.offset("aggregate end", pb.BaseTimeUnixNano, a.LastEndOffsetNs); err != nil {
		return err
	}
	if a.FirstStartOffsetNs < -int64(v.lim.MaxDuration) || a.FirstStartOffsetNs > a.LastEndOffsetNs {
		return reject(flowv1.RejectReason_REJECT_REASON_TIMESTAMP, "aggregate start after its end")
	}
	return nil
}

func validateHeartbeat(h *flowv1.OwnershipHeartbeat, lim Limits, v timeCheck) error {
	if len(h.Ownerships) > lim.MaxOwnerships {
		return reject(flowv1.RejectReason_REJECT_REASON_TOO_LARGE, "%d ownerships exceed %d", len(h.Ownerships), lim.MaxOwnerships)
	}
	if err := checkString(h.Node, lim); err != nil {
		return err
	}
	if err := v.at("heartbeat time", h.TimeUnixNano); err != nil {
		return err
	}
	for i, o := range h.Ownerships {
		if err := validateOwnership(o, lim, v); err != nil {
			return fmt.Errorf("ownership %d: %w", i, err)
		}
	}
	return nil
}

func validateOwnership(o *flowv1.Ownership, lim Limits, v timeCheck) error {
	invalid := flowv1.RejectReason_REJECT_REASON_INVALID
	if !validAddr(o.Addr) {
		return reject(invalid, "address must be 4 or 16 bytes")
	}
	if o.Port > math.MaxUint16 {
		return reject(invalid, "port out of range")
	}
	if err := validateWorkload(o.Workload, lim); err != nil {
		return err
	}
	for _, s := range []string{o.Namespace, o.PodName} {
		if err := checkString(s, lim); err != nil {
			return err
		}
	}
	if o.FromUnixNano != 0 && o.FromUnixNano < v.now-int64(v.lim.MaxDuration) {
		return reject(flowv1.RejectReason_REJECT_REASON_TIMESTAMP, "implausible ownership start")
	}
	if o.ToUnixNano != 0 && o.ToUnixNano < o.FromUnixNano {
		return reject(flowv1.RejectReason_REJECT_REASON_TIMESTAMP, "ownership ends before it starts")
	}
	return nil
}

func knownEnum(names map[int32]string, v int32) bool {
	_, ok := names[v]
	return ok
}
