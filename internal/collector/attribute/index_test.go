package attribute

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/flowscope/flowscope/internal/flow"
)

// The index's operations by key, which TestClientIndex compares with a map (the holding
// window works on slots: find, put, remove).

// get returns the newest record of key (nil when none).
func (x *clientIndex) get(key uint64) *held {
	if x.n == 0 {
		return nil
	}
	return x.slots[x.find(key)].h
}

// swap makes h the newest record of key and returns the previous one (nil when none).
func (x *clientIndex) swap(key uint64, h *held) *held {
	i := x.find(key)
	old := x.slots[i].h
	x.put(i, key, h)
	return old
}

// set replaces the newest record of key (which must be present) by h, or removes key when h
// is nil.
func (x *clientIndex) set(key uint64, h *held) {
	i := x.find(key)
	if h != nil {
		x.slots[i].h = h
		return
	}
	x.remove(i)
}

// TestClientIndex runs random operations on the index and on a Go map, keys crowded into few
// home slots so that probe sequences wrap and deletions shift, and compares them.
func TestClientIndex(t *testing.T) {
	for _, keys := range []int{8, 300, 5000} {
		var x clientIndex
		m := map[uint64]*held{}
		rng := rand.New(rand.NewPCG(1, uint64(keys)))
		recs := make([]held, 16)
		for i := range 200_000 {
			k := uint64(rng.IntN(keys)) << 50 // low bits zero: every key starts at slot 0 or wraps
			if i%3 == 0 {
				k = uint64(rng.IntN(keys)) * 1023
			}
			switch h := &recs[rng.IntN(len(recs))]; {
			case m[k] == nil || rng.IntN(2) == 0:
				if got, want := x.swap(k, h), m[k]; got != want {
					t.Fatalf("keys=%d op %d: swap(%#x) returned %p, want %p", keys, i, k, got, want)
				}
				m[k] = h
			case rng.IntN(2) == 0:
				x.set(k, h)
				m[k] = h
			default:
				x.set(k, nil)
				delete(m, k)
			}
			if i%1000 == 0 {
				x.shrink()
			}
		}
		if x.n != len(m) {
			t.Fatalf("keys=%d: index holds %d keys, want %d", keys, x.n, len(m))
		}
		for k, h := range m {
			if got := x.get(k); got != h {
				t.Fatalf("keys=%d: get(%#x) = %p, want %p", keys, k, got, h)
			}
		}
		for i := range uint64(keys) {
			if k := i << 50; m[k] == nil && x.get(k) != nil {
				t.Fatalf("keys=%d: get(%#x) found a removed key", keys, k)
			}
		}
	}
}

// sameClient agrees with comparing client keys, for addresses given mapped or not, kept
// inline or out of line (the other end IPv4 or not); equal keys hash alike, and reaches
// agrees with comparing a client's destination (dialled, or its translation's backend) with a
// server's local end. (Zoned addresses
// never reach a held record: validate refuses them.)
func TestSameClient(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("10.0.0.2"),
		netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fe80::2"), netip.MustParseAddr("::a00:1")}
	others := []netip.Addr{netip.MustParseAddr("10.9.9.9"), netip.MustParseAddr("2001:db8::9")}
	var ts translations
	var locs locations
	keep := func(dir flow.Direction, local netip.Addr, lport uint16, remote netip.Addr, rport uint16) *kept {
		var x kept
		x.set(1, "n", &flow.Record{Direction: dir, LocalAddr: local, LocalPort: lport, RemoteAddr: remote, RemotePort: rport}, false, &locs, &ts)
		return &x
	}
	for _, xa := range addrs {
		for _, ya := range addrs {
			for _, yp := range []uint16{40000, 40001} {
				for _, other := range others {
					x := keep(flow.Client, xa, 40000, other, 80)
					y := keep(flow.Server, other, 80, ya, yp)
					same := xa.Unmap() == ya.Unmap() && yp == 40000 // the client keys, from the addresses as given
					if got := sameClient(x, y, &ts); got != same {
						t.Errorf("sameClient(%s:40000, %s:%d) = %v, want %v", xa, ya, yp, got, same)
					}
					if same && clientHash(x.clientEnd(&ts)) != clientHash(y.clientEnd(&ts)) {
						t.Errorf("%s:40000 and %s:%d are one client key with two hashes", xa, ya, yp)
					}
					sp := yp - 40000 + 80 // (80 or 81)
					c := keep(flow.Client, other, 40000, xa, 80)
					s := keep(flow.Server, ya, sp, other, 40000)
					if got, want := reaches(c, s, &ts), xa.Unmap() == ya.Unmap() && sp == 80; got != want {
						t.Errorf("reaches(%s:80, %s:%d) = %v, want %v", xa, ya, sp, got, want)
					}
					// The same destination as a translation's backend: the client dialled a VIP.
					r := flow.Record{Direction: flow.Client, LocalAddr: other, LocalPort: 40000, RemoteAddr: netip.MustParseAddr("10.96.0.1"), RemotePort: 443,
						NatRemoteAddr: xa, NatRemotePort: 80}
					var v kept
					v.set(1, "n", &r, false, &locs, &ts) // (it holds the translation)
					if got, want := reaches(&v, s, &ts), xa.Unmap() == ya.Unmap() && sp == 80; got != want {
						t.Errorf("reaches(10.96.0.1:443 translated to %s:80, %s:%d) = %v, want %v", xa, ya, sp, got, want)
					}
				}
			}
		}
	}
}
