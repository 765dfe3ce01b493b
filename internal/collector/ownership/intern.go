package ownership

import (
	"hash/maphash"

	"github.com/flowscope/flowscope/internal/flow"
)

// ownerID names an interned owner; 0 is none. Ranges hold a reference on their owner: an id
// is reused only once no range, UID entry or lookup can name it any more.
type ownerID uint32

// nShared is the number of owner fields shared by many owners, kept in the string table.
const nShared = 10

// ownerKey is an owner in compact form: shared strings as string-table ids.
type ownerKey struct {
	kind uint8
	strs [nShared]uint32 // cluster, namespace, workload, workload kind, node, service account, service, network, labels, zone
	pod  string
	uid  string
}

type ownerRec struct {
	key  ownerKey
	refs uint32
	next ownerID // next owner with the same hash
}

// owners interns owners with reference counts: ~100 bytes per owner besides its pod name
// and UID, where a unique.Handle of the full struct costs ~550.
type owners struct {
	recs  []ownerRec // by id; recs[0] unused
	free  []ownerID
	index map[uint64]ownerID // hash → first owner with it
	seed  maphash.Seed
	strs  stringTable
}

var kinds = []flow.EndpointKind{"", flow.EndpointPod, flow.EndpointService, flow.EndpointNode, flow.EndpointHost, flow.EndpointNetwork, flow.EndpointUnattributed}

func kindIndex(k flow.EndpointKind) uint8 {
	for i, x := range kinds {
		if x == k {
			return uint8(i)
		}
	}
	return 0
}

func newOwners() owners {
	return owners{recs: make([]ownerRec, 1), index: map[uint64]ownerID{}, seed: maphash.MakeSeed(), strs: newStringTable()}
}

func shared(o *Owner) [nShared]*string {
	return [nShared]*string{&o.Cluster, &o.Namespace, &o.Workload, &o.WorkloadKind, &o.Node, &o.ServiceAccount, &o.Service, &o.Network, &o.Labels, &o.Zone}
}

func (t *owners) hash(k *ownerKey) uint64 {
	var h maphash.Hash
	h.SetSeed(t.seed)
	h.WriteByte(k.kind)
	for _, s := range k.strs {
		h.WriteByte(byte(s))
		h.WriteByte(byte(s >> 8))
		h.WriteByte(byte(s >> 16))
		h.WriteByte(byte(s >> 24))
	}
	h.WriteString(k.pod)
	h.WriteByte(0)
	h.WriteString(k.uid)
	return h.Sum64()
}

// key renders o compactly; with add, missing strings are added to the table (with a
// reference each, which the caller keeps or drops), else ok is false when one is missing.
func (t *owners) key(o *Owner, add bool) (k ownerKey, ok bool) {
	k = ownerKey{kind: kindIndex(o.Kind), pod: o.Pod, uid: o.PodUID}
	for i, f := range shared(o) {
		if *f == "" {
			continue
		}
		if add {
			k.strs[i] = t.strs.add(*f)
		} else if k.strs[i], ok = t.strs.find(*f); !ok {
			return k, false
		}
	}
	return k, true
}

func (t *owners) lookup(k *ownerKey, h uint64) ownerID {
	for id := t.index[h]; id != 0; id = t.recs[id].next {
		if t.recs[id].key == *k {
			return id
		}
	}
	return 0
}

// intern returns o's id with one more reference.
func (t *owners) intern(o Owner) ownerID {
	if k, ok := t.key(&o, false); ok {
		if id := t.lookup(&k, t.hash(&k)); id != 0 {
			t.recs[id].refs++
			return id
		}
	}
	k, _ := t.key(&o, true) // new owner: it holds a reference on each of its strings
	h := t.hash(&k)
	var id ownerID
	if n := len(t.free); n > 0 {
		id, t.free = t.free[n-1], t.free[:n-1]
	} else {
		id = ownerID(len(t.recs))
		t.recs = append(t.recs, ownerRec{})
	}
	t.recs[id] = ownerRec{key: k, refs: 1, next: t.index[h]}
	t.index[h] = id
	return id
}

// find returns o's id without a new reference (0 when o is not interned).
func (t *owners) find(o Owner) ownerID {
	k, ok := t.key(&o, false)
	if !ok {
		return 0
	}
	return t.lookup(&k, t.hash(&k))
}

func (t *owners) ref(id ownerID) { t.recs[id].refs++ }

// unref drops a reference; the last one frees the owner and its strings.
func (t *owners) unref(id ownerID) {
	r := &t.recs[id]
	if r.refs--; r.refs > 0 {
		return
	}
	h := t.hash(&r.key)
	if t.index[h] == id {
		if r.next == 0 {
			delete(t.index, h)
		} else {
			t.index[h] = r.next
		}
	} else {
		for p := t.index[h]; p != 0; p = t.recs[p].next {
			if t.recs[p].next == id {
				t.recs[p].next = r.next
				break
			}
		}
	}
	for _, s := range r.key.strs {
		if s != 0 {
			t.strs.unref(s)
		}
	}
	*r = ownerRec{}
	t.free = append(t.free, id)
}

// get renders an owner.
func (t *owners) get(id ownerID) Owner {
	r := &t.recs[id]
	o := Owner{Kind: kinds[r.key.kind], Pod: r.key.pod, PodUID: r.key.uid}
	for i, f := range shared(&o) {
		if s := r.key.strs[i]; s != 0 {
			*f = t.strs.recs[s].s
		}
	}
	return o
}

// detail counts an owner's named fields.
func (t *owners) detail(id ownerID) int {
	r := &t.recs[id]
	n := 0
	for i, s := range r.key.strs {
		if s != 0 && i != 0 && i != 7 { // cluster and network name no workload detail
			n++
		}
	}
	if r.key.pod != "" {
		n++
	}
	if r.key.uid != "" {
		n++
	}
	return n
}

// stringTable interns the shared strings of owners with reference counts.
type stringTable struct {
	recs  []stringRec // recs[0] unused
	free  []uint32
	index map[string]uint32
}

type stringRec struct {
	s    string
	refs uint32
}

func newStringTable() stringTable {
	return stringTable{recs: make([]stringRec, 1), index: map[string]uint32{}}
}

func (t *stringTable) find(s string) (uint32, bool) {
	id, ok := t.index[s]
	return id, ok
}

func (t *stringTable) add(s string) uint32 {
	if id, ok := t.index[s]; ok {
		t.recs[id].refs++
		return id
	}
	var id uint32
	if n := len(t.free); n > 0 {
		id, t.free = t.free[n-1], t.free[:n-1]
	} else {
		id = uint32(len(t.recs))
		t.recs = append(t.recs, stringRec{})
	}
	t.recs[id] = stringRec{s: s, refs: 1}
	t.index[s] = id
	return id
}

func (t *stringTable) unref(id uint32) {
	r := &t.recs[id]
	if r.refs--; r.refs > 0 {
		return
	}
	delete(t.index, r.s)
	*r = stringRec{}
	t.free = append(t.free, id)
}
