package flow

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sampleRecord() Record {
	return Record{ConnID: 1<<40 + 3, Family: IPv6, LocalAddr: netip.MustParseAddr("fd00::1"), LocalPort: 443,
		RemoteAddr: netip.MustParseAddr("fd00::2"), RemotePort: 51000, Direction: Server, Netns: 4026531840,
		CgroupID: 77, Workload: Workload{Kind: KindPod, PodUID: "0c4d-11", ContainerID: "abc", Runtime: "containerd",
			CgroupPath: "/kubepods.slice/x\"y\\z", Pid: 42, Comm: "ng\x01inx<>&é"},
		Start: time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC), End: time.Date(2026, 11, 25, 12, 0, 1, 0, time.UTC),
		Interim: true, StartKnown: true, BytesSent: 1, BytesReceived: 2, SegsSent: 3, SegsReceived: 4, Retransmits: 5,
		BytesRetransmitted: 6, SrttUs: 7, MinRttUs: 8, ResetsSent: 9, ResetsReceived: 10, Outcome: Open, CloseState: "ESTABLISHED"}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	local := sampleRecord()
	local.Start = local.Start.In(time.FixedZone("X", 3600))
	whole := sampleRecord()
	whole.Start, whole.End = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC)
	natted := sampleRecord()
	natted.HostNetwork, natted.NatRemoteAddr, natted.NatRemotePort = true, netip.MustParseAddr("10.0.0.7"), 8080
	for _, r := range []Record{sampleRecord(), {}, {Workload: Workload{Kind: KindHost}}, local, whole, natted} {
		fast := AppendJSON(nil, &r)
		slow, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var a, b map[string]any
		if err := json.Unmarshal(fast, &a); err != nil {
			t.Fatalf("AppendJSON output is not JSON: %v\n%s", err, fast)
		}
		if err := json.Unmarshal(slow, &b); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(b, a); d != "" {
			t.Errorf("AppendJSON differs from encoding/json (-json +fast):\n%s", d)
		}
		var back Record
		if err := json.Unmarshal(fast, &back); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(r, back, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); d != "" {
			t.Errorf("round trip (-in +out):\n%s", d)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	r := sampleRecord()
	r.Workload.Comm, r.Workload.CgroupPath = "nginx", "/kubepods.slice/pod"
	var buf []byte
	var e JSONEncoder
	for b.Loop() {
		buf = e.Append(buf[:0], &r)
	}
}

func BenchmarkMarshalJSON(b *testing.B) {
	r := sampleRecord()
	for b.Loop() {
		_, _ = json.Marshal(r)
	}
}

func TestJSONEncoderReusesSecondsCorrectly(t *testing.T) {
	var e JSONEncoder
	base := sampleRecord()
	for i, d := range []time.Duration{0, 1, 999_999_999, time.Second, 61 * time.Second, -time.Hour} {
		r := base
		r.Start, r.End = r.Start.Add(d), r.End.Add(2*d)
		fast, slow := e.Append(nil, &r), AppendJSON(nil, &r)
		if string(fast) != string(slow) {
			t.Fatalf("case %d: encoder with memory differs:\n%s\n%s", i, fast, slow)
		}
		var back Record
		if err := json.Unmarshal(fast, &back); err != nil || !back.Start.Equal(r.Start) || !back.End.Equal(r.End) {
			t.Fatalf("case %d: times do not round-trip: %v %v %v", i, err, back.Start, r.Start)
		}
	}
}

func TestJSONEncoderFollowsWorkloadChanges(t *testing.T) {
	var e JSONEncoder
	a, b := sampleRecord(), sampleRecord()
	b.Workload = Workload{Kind: KindUnit, Unit: "sshd.service", CgroupPath: "/system.slice/sshd.service", Pid: 7, Comm: "sshd"}
	c := b
	c.Workload.Pid = 8 // same workload strings, another process
	for i, r := range []Record{a, b, b, c, a, {}} {
		fast, slow := e.Append(nil, &r), AppendJSON(nil, &r)
		if string(fast) != string(slow) {
			t.Fatalf("record %d: encoder with memory differs:\n%s\n%s", i, fast, slow)
		}
	}
}
