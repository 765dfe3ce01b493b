package flowbatch

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	flowv1 "github.com/flowscope/flowscope/api/flow/v1"
)

// Limits bound what the collector accepts in one batch.
type Limits struct {
	MaxBytes      int           // encoded size
	MaxRecords    int           // records + aggregates
	MaxOrigins    int           // interned workloads
	MaxOwnerships int           // heartbeat entries
	MaxCounters   int           // counters
	MaxString     int           // bytes in any string
	MaxAge        time.Duration // a flow may end at most this long before the collector's now
	MaxSkew       time.Duration // ... and at most this long after it
	MaxDuration   time.Duration // longest plausible connection
}

// DefaultLimits are the collector's defaults.
func DefaultLimits() Limits {
	return Limits{
		MaxBytes: 16 << 20, MaxRecords: 100_000, MaxOrigins: 100_000, MaxOwnerships: 100_000,
		MaxCounters: 1024, MaxString: 1024,
		MaxAge: 7 * 24 * time.Hour, MaxSkew: 10 * time.Minute, MaxDuration: 400 * 24 * time.Hour,
	}
}

// StructureLimits check structure only (no size or time plausibility): for re-reading batches
// that were accepted earlier.
func StructureLimits() Limits {
	const century = 100 * 365 * 24 * time.Hour
	const many = 1 << 40
	return Limits{MaxBytes: many, MaxRecords: many, MaxOrigins: many, MaxOwnerships: many, MaxCounters: many,
		MaxString: many, MaxAge: century, MaxSkew: century, MaxDuration: century}
}

// RejectError is a batch the collector refuses, with the reason sent back to the exporter.
type RejectError struct {
	Reason flowv1.RejectReason
	Msg    string
}

func (e *RejectError) Error() string { return ReasonName(e.Reason) + ": " + e.Msg }

// ReasonName is the short metric label of a rejection reason, e.g. "version".
func ReasonName(r flowv1.RejectReason) string {
	n, ok := flowv1.RejectReason_name[int32(r)]
	if !ok || len(n) <= len("REJECT_REASON_") {
		return "unspecified"
	}
	b := []byte(n[len("REJECT_REASON_"):])
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func reject(r flowv1.RejectReason, format string, args ...any) error {
	return &RejectError{Reason: r, Msg: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the rejection reason of err (MALFORMED for errors that are not rejections).
func ReasonOf(err error) flowv1.RejectReason {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return flowv1.RejectReason_REJECT_REASON_MALFORMED
}

// Decode parses and validates one encoded batch. Every error is a *RejectError; a batch that
// parsed but failed validation is returned with the error (to echo its sequence number).
func Decode(data []byte, lim Limits, now time.Time) (*flowv1.Batch, error) {
	if lim.MaxBytes > 0 && len(data) > lim.MaxBytes {
		return nil, reject(flowv1.RejectReason_REJECT_REASON_TOO_LARGE, "batch of %d bytes exceeds %d", len(data), lim.MaxBytes)
	}
	pb := &flowv1.Batch{}
	if err := proto.Unmarshal(data, pb); err != nil {
		return nil, reject(flowv1.RejectReason_REJECT_REASON_MALFORMED, "decoding batch: %v", err)
	}
	if err := Validate(pb, lim, now); err != nil {
		return pb, err
	}
	return pb, nil
}

// Validate checks a decoded batch: version, identity, sizes, field ranges and timestamps.
func Validate(pb *flowv1.Batch, lim Limits, now time.Time) error {
	if pb.MajorVersion != MajorVersion {
		return reject(flowv1.RejectReason_REJECT_REASON_VERSION, "unsupported major version %d (this collector speaks %d)", pb.MajorVersion, MajorVersion)
	}
	if err := validateHeader(pb, lim); err != nil {
		return err
	}
	if n := len(pb.Records) + len(pb.Aggregates); n > lim.MaxRecords {
		return reject(flowv1.RejectReason_REJECT_REASON_TOO_LARGE, "%d records exceed %d", n, lim.MaxRecords)
	}
	if len(pb.Origins) > lim.MaxOrigins {
		return reject(flowv1.RejectReason_REJECT_REASON_TOO_LARGE, "%d workloads exceed %d", len(pb.Origins), lim.MaxOrigins)
	}
	for i, o := range pb.Origins {
		if err := validateWorkload(o.Workload, lim); err != nil {
			return fmt.Errorf("origin %d: %w", i, err)
		}
	}
	v := timeCheck{lim: lim, now: now.UnixNano()}
	if len(pb.Records) > 0 || len(pb.Aggregates) > 0 {
		if err := v.at("base time", pb.BaseTimeUnixNano); err != nil {
			return err
		}
	}
	prev := pb.BaseTimeUnixNano
	for i, r := range pb.Records {
		end, err := validateRecord(pb, r, v, prev)
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		prev = end
	}
	for i, a := range pb.Aggregates {
		if err := validateAggregate(pb, a, v); err != nil {
			return fmt.Errorf("aggregate %d: %w", i, err)
		}
	}
	if pb.Heartbeat != nil {
		return validateHeartbeat(pb.Heartbeat, lim, v)
	}
	return nil
}

func validateHeader(pb *flowv1.Batch, lim Limits) error {
	invalid := flowv1.RejectReason_REJECT_REASON_INVALID
	switch {
	case pb.ExporterId == "":
		return reject(invalid, "missing exporter id")
	case pb.BootId == "":
		return reject(invalid, "missing boot id")
	case pb.Sequence == 0:
		return reject(invalid, "missing sequence number")
	}
	for _, s := range []string{pb.ExporterId, pb.BootId, pb.NodeName} {
		if err := checkString(s, lim); err != nil {
			return err
		}
	}
	if len(pb.Counters) > lim.MaxCounters {
		return reject(flowv1.RejectReason_REJECT_REASON_TOO_LARGE, "%d counters exceed %d", len(pb.Counters), lim.MaxCounters)
	}
	for _, c := range pb.Counters {
		if c.Name == "" {
			return reject(invalid, "counter without a name")
		}
		if err := checkString(c.Name, lim); err != nil {
			return err
		}
	}
	return nil
}

func checkString(s string, lim Limits) error {
	if len(s) > lim.MaxString {
		return reject(flowv1.RejectReason_REJECT_REASON_TOO_LARGE, "string of %d bytes exceeds %d", len(s), lim.MaxString)
	}
	if !utf8.ValidString(s) {
		return reject(flowv1.RejectReason_REJECT_REASON_INVALID, "string is not UTF-8")
	}
	return nil
}

func validateWorkload(w *flowv1.Workload, lim Limits) error {
	if w == nil {
		return nil
	}
	if _, ok := flowv1.WorkloadKind_name[int32(w.Kind)]; !ok {
		return reject(flowv1.RejectReason_REJECT_REASON_INVALID, "unknown workload kind %d", w.Kind)
	}
	for _, s := range []string{w.PodUid, w.ContainerId, w.Runtime, w.Unit, w.CgroupPath, w.Comm} {
		if err := checkString(s, lim); err != nil {
			return err
		}
	}
	return nil
}
