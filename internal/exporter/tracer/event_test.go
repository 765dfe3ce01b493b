package tracer

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

func TestEventLayoutMatchesBPF(t *testing.T) {
	var g flowscopeFlowEvent
	if got := unsafe.Sizeof(g); got != eventSize {
		t.Fatalf("sizeof(struct flow_event) = %d, decoder assumes %d", got, eventSize)
	}
	offsets := map[string][2]uintptr{
		"Key": {unsafe.Offsetof(g.Key), 0}, "StartNs": {unsafe.Offsetof(g.StartNs), 16},
		"CgroupId": {unsafe.Offsetof(g.CgroupId), 32}, "BytesRetrans": {unsafe.Offsetof(g.BytesRetrans), 56},
		"Netns": {unsafe.Offsetof(g.Netns), 64}, "Pid": {unsafe.Offsetof(g.Pid), 88},
		"Sport": {unsafe.Offsetof(g.Sport), 92}, "Flags": {unsafe.Offsetof(g.Flags), 98},
		"SkErr": {unsafe.Offsetof(g.SkErr), 100}, "Kind": {unsafe.Offsetof(g.Kind), 102},
		"ResetsReceived": {unsafe.Offsetof(g.ResetsReceived), 104}, "Saddr": {unsafe.Offsetof(g.Saddr), 108},
		"Daddr": {unsafe.Offsetof(g.Daddr), 124}, "Comm": {unsafe.Offsetof(g.Comm), 140},
		"Inode": {unsafe.Offsetof(g.Inode), 160},
	}
	for name, o := range offsets {
		if o[0] != o[1] {
			t.Errorf("offset of %s = %d, decoder assumes %d", name, o[0], o[1])
		}
	}
}

func TestDecodeEventRoundTrip(t *testing.T) {
	g := flowscopeFlowEvent{Key: 7, Skaddr: 8, StartNs: 100, EndNs: 200, CgroupId: 9, BytesAcked: 1000002,
		BytesReceived: 3000001, BytesRetrans: 5, Netns: 4026531840, SegsOut: 10, SegsIn: 11, TotalRetrans: 2,
		SrttUs: 50, MinRttUs: 40, Pid: 1234, Sport: 40000, Dport: 80, Family: 10, Flags: FlagActive | FlagStartKnown,
		SkErr: 104, Kind: uint8(KindClose), State: StateFinWait2, ResetsReceived: 1, Inode: 99}
	v6 := netip.MustParseAddr("fd00::1").As16()
	for i := range 4 {
		g.Saddr[i] = binary.LittleEndian.Uint32(v6[i*4:])
	}
	copy((*[16]byte)(unsafe.Pointer(&g.Comm))[:], "curl")
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, g); err != nil {
		t.Fatal(err)
	}
	var e Event
	if err := decodeEvent(buf.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	want := Event{Key: 7, SkAddr: 8, StartNs: 100, EndNs: 200, CgroupID: 9, BytesAcked: 1000002,
		BytesReceived: 3000001, BytesRetrans: 5, Netns: 4026531840, SegsOut: 10, SegsIn: 11, TotalRetrans: 2,
		SrttUs: 50, MinRttUs: 40, Pid: 1234, Sport: 40000, Dport: 80, Family: 10, Flags: FlagActive | FlagStartKnown,
		SkErr: 104, Kind: KindClose, State: StateFinWait2, ResetsReceived: 1, Saddr: v6, Comm: "curl", Inode: 99}
	if d := cmp.Diff(want, e); d != "" {
		t.Fatalf("decode mismatch (-want +got):\n%s", d)
	}
	if err := decodeEvent(buf.Bytes()[:100], &e); err == nil {
		t.Fatal("short buffer decoded without error")
	}
}

func TestAddrsUnmapsV4Mapped(t *testing.T) {
	e := Event{Family: 10, Saddr: netip.MustParseAddr("::ffff:10.0.0.1").As16(), Daddr: netip.MustParseAddr("::ffff:10.0.0.2").As16()}
	l, r := e.Addrs()
	if l.String() != "10.0.0.1" || r.String() != "10.0.0.2" {
		t.Fatalf("got %v %v", l, r)
	}
}
