package ownership

import (
	"hash/maphash"
	"unsafe"

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

// meta packs the UID's hash, the kind, the detail count, whether Kubernetes named the owner
// (it has a workload) and the UID's form (see uidKey) in 8 bytes; and, the one part that
// changes, whether the UID index names the owner for its UID (metaIndexed).
type meta uint64

// metaIndexed: the UID index holds the owner (uidIndex.set sets it, and clears it on the
// owner it replaces; del clears it).
const metaIndexed meta = 1 << 49

// metaOf is the meta of k, whose UID has the given key and form (uidKeyOf).
func metaOf(k *ownerKey, key uidKey, form uint8) meta {
	d := 0
	for i, s := range k.strs {
		if s != 0 && i != sCluster && i != sNetwork { // cluster and network name no workload detail
			d++
		}
	}
	if k.pod != "" {
		d++
	}
	if k.uid != "" {
		d++
	}
	m := meta(uidFingerprint(key, form, k.uid)) | meta(k.kind)<<32 | meta(d)<<40 | meta(form)<<56
	if k.strs[sWorkload] != 0 {
		m |= 1 << 48
	}
	return m
}

func (m meta) uh() uint32                  { return uint32(m) }
func (m meta) kind() uint8                 { return uint8(m >> 32) }
func (m meta) detail() int                 { return int(uint8(m >> 40)) }
func (m meta) named() bool                 { return m&(1<<48) != 0 }
func (m meta) indexed() bool               { return m&metaIndexed != 0 }
func (m meta) form() uint8                 { return uint8(m >> 56) }
func (m meta) endpoint() flow.EndpointKind { return kinds[m.kind()] }

// An interned owner is kept in arrays by id, each sized for who reads it:
//   - hot: what claims and lookups read — the meta, the UID's inline key and the reference
//     count, 32 bytes (two a cache line, none across two): 3.2 MB for 100,000 owners; a claim
//     compares UIDs there, without reading the UID's bytes, and the references its range
//     takes and drops are counted in the line it read (a separate array of counts cost a
//     claim a miss of its own);
//   - recs: what rendering reads (shared strings, pod name, UID), one 64-byte cache line;
//   - hs: the hash of the owner's key (the index's).
type ownerHot struct {
	m    meta
	key  uidKey
	refs uint32
	_    uint32
}

// The hot entry is half a line.
var _ [32 - unsafe.Sizeof(ownerHot{})]byte

// ownerRec holds its two strings as pointer and length, so that they fit one line with the
// shared strings' ids.
type ownerRec struct {
	strs       [nShared]uint32
	podP, uidP *byte
	podN, uidN uint32
}

func (r *ownerRec) pod() string { return unsafe.String(r.podP, r.podN) }
func (r *ownerRec) uid() string { return unsafe.String(r.uidP, r.uidN) }

// The record is one cache line.
var _ [64 - unsafe.Sizeof(ownerRec{})]byte

// hugeMinOwners is the number of owners from which their arrays are advised into huge pages.
const hugeMinOwners = 16 << 10

// owners interns owners with reference counts: ≈ 108 bytes per owner besides its pod name
// and UID, where a unique.Handle of the full struct costs ~550.
type owners struct {
	recs   []ownerRec // by id; [0] unused
	hot    []ownerHot
	hs     []uint64
	free   []ownerID
	index  ownerIndex // hash → owner
	seed   maphash.Seed
	strs   stringTable
	zones  map[string]string // node name → its zone (topology.kubernetes.io/zone; zone.go)
	shared *sharedEndpoints  // Services' rendered endpoints (shared.go)

	// Quarantine: an owner whose last reference went stays renderable (its record and
	// strings intact) for hold nanoseconds before its id is reused, so that ids handed out by
	// lookups stay valid while the holding window keeps them (see Store.HoldRefs).
	hold       int64
	clock      func() int64
	quarantine []freed
	qHead      int
}

type freed struct {
	id ownerID
	at int64
}

// Owner kinds as meta keeps them (indices in kinds): hot paths compare these, not the
// kinds' strings (a string comparison is a call).
const (
	kindNone uint8 = iota
	kindPod
	kindService
	kindNode
	kindHost
	kindNetwork
	kindUnattributed
)

var kinds = []flow.EndpointKind{kindNone: "", kindPod: flow.EndpointPod, kindService: flow.EndpointService, kindNode: flow.EndpointNode,
	kindHost: flow.EndpointHost, kindNetwork: flow.EndpointNetwork, kindUnattributed: flow.EndpointUnattributed}

func kindIndex(k flow.EndpointKind) uint8 {
	for i, x := range kinds {
		if x == k {
			return uint8(i)
		}
	}
	return 0
}

func newOwners() owners {
	return owners{recs: make([]ownerRec, 1), hot: make([]ownerHot, 1), hs: make([]uint64, 1),
		seed: maphash.MakeSeed(), strs: newStringTable(), zones: map[string]string{},
		shared: &sharedEndpoints{}}
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
			switch r := &t.strs.recs[k.strs[i]]; {
			case i == sLabels && r.labels == nil:
				r.labels = parseLabels(r.s) // (rendered with every endpoint of the owner: FillEndpoint)
			case i == sNode && r.zone == 0:
				if z := t.zones[r.s]; z != "" {
					t.strs.setZone(k.strs[i], z)
				}
			}
		} else if k.strs[i], ok = t.strs.find(*f); !ok {
			return k, false
		}
	}
	return k, true
}

// keyOf returns the compact form of an interned owner.
func (t *owners) keyOf(id ownerID) ownerKey {
	r := &t.recs[id]
	return ownerKey{kind: t.hot[id].m.kind(), strs: r.strs, pod: r.pod(), uid: r.uid()}
}

func (t *owners) lookup(k *ownerKey, h uint64) ownerID {
	if t.index.n == 0 {
		return 0
	}
	i, ok := t.findSlot(k, h)
	if !ok {
		return 0
	}
	return t.index.ids[i]
}

// intern returns o's id with one more reference.
func (t *owners) intern(o Owner) ownerID {
	if k, ok := t.key(&o, false); ok {
		if id := t.lookup(&k, t.hash(&k)); id != 0 {
			t.hot[id].refs++
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
		c := cap(t.recs)
		t.recs = append(t.recs, ownerRec{})
		t.hot = append(t.hot, ownerHot{})
		t.hs = append(t.hs, 0)
		if cap(t.recs) != c && c >= hugeMinOwners { // new arrays: what lookups read in huge pages
			adviseHuge(unsafe.Pointer(unsafe.SliceData(t.recs)), uintptr(cap(t.recs))*unsafe.Sizeof(ownerRec{}))
			adviseHuge(unsafe.Pointer(unsafe.SliceData(t.hot)), uintptr(cap(t.hot))*unsafe.Sizeof(ownerHot{}))
		}
	}
	t.recs[id] = ownerRec{strs: k.strs, podP: unsafe.StringData(k.pod), uidP: unsafe.StringData(k.uid), podN: uint32(len(k.pod)), uidN: uint32(len(k.uid))}
	key, form := uidKeyOf(k.uid)
	t.hot[id] = ownerHot{m: metaOf(&k, key, form), key: key, refs: 1}
	t.hs[id] = h
	t.reindex(id)
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

func (t *owners) ref(id ownerID) { t.hot[id].refs++ }

// unref drops a reference; the last one frees the owner and its strings (after the
// quarantine, when one is set: meanwhile the id still renders the owner).
func (t *owners) unref(id ownerID) {
	h := &t.hot[id]
	if h.refs--; h.refs > 0 {
		return
	}
	t.unindex(id)
	if t.hold > 0 {
		t.quarantine = append(t.quarantine, freed{id: id, at: t.clock()})
		return
	}
	t.release(id)
}

// releaseQuarantined frees the owners quarantined before `before`.
func (t *owners) releaseQuarantined(before int64) {
	for t.qHead < len(t.quarantine) && t.quarantine[t.qHead].at < before {
		t.release(t.quarantine[t.qHead].id)
		t.qHead++
	}
	if t.qHead > 0 && t.qHead*2 >= len(t.quarantine) {
		n := copy(t.quarantine, t.quarantine[t.qHead:])
		t.quarantine, t.qHead = t.quarantine[:n], 0
	}
}

// release frees an unreferenced owner's strings and id.
func (t *owners) release(id ownerID) {
	if t.hot[id].m.kind() == kindService {
		t.shared.forget(id)
	}
	for _, s := range t.recs[id].strs {
		if s != 0 {
			t.strs.unref(s)
		}
	}
	t.recs[id], t.hot[id], t.hs[id] = ownerRec{}, ownerHot{}, 0
	t.free = append(t.free, id)
}

// get renders an owner.
func (t *owners) get(id ownerID) Owner {
	r := &t.recs[id]
	o := Owner{Kind: kinds[t.hot[id].m.kind()], Pod: r.pod(), PodUID: r.uid()}
	for i, f := range shared(&o) {
		if s := r.strs[i]; s != 0 {
			*f = t.strs.recs[s].s
		}
	}
	return o
}

// Indexes of the shared strings in ownerKey.strs (the order of shared).
const (
	sCluster = iota
	sNamespace
	sWorkload
	sWorkloadKind
	sNode
	sServiceAccount
	sService
	sNetwork
	sLabels
	sZone
)

// same reports whether two owners name one identity (SameIdentity on the compact form:
// interned strings are equal exactly when their ids are).
func (t *owners) same(a, b ownerID) bool {
	if a == b {
		return true
	}
	ha, hb := &t.hot[a], &t.hot[b]
	if ha.m.kind() != hb.m.kind() {
		return false
	}
	x, y := &t.recs[a], &t.recs[b]
	switch ha.m.kind() {
	case kindPod:
		if fa, fb := ha.m.form(), hb.m.form(); fa != uidNone && fb != uidNone {
			if fa != fb {
				return false
			}
			if fa != uidLong {
				return ha.key == hb.key
			}
			return ha.m.uh() == hb.m.uh() && x.uid() == y.uid()
		}
		return x.podN != 0 && x.strs[sNamespace] == y.strs[sNamespace] && x.pod() == y.pod()
	case kindService:
		return x.strs[sNamespace] == y.strs[sNamespace] && x.strs[sService] == y.strs[sService]
	case kindNode:
		return x.strs[sNode] == y.strs[sNode]
	case kindNetwork:
		return x.strs[sNetwork] == y.strs[sNetwork]
	}
	return x.strs[sNode] == y.strs[sNode] && x.strs[sWorkload] == y.strs[sWorkload] && x.strs[sWorkloadKind] == y.strs[sWorkloadKind]
}

// str returns shared string i of an owner.
func (t *owners) str(id ownerID, i int) string {
	if s := t.recs[id].strs[i]; s != 0 {
		return t.strs.recs[s].s
	}
	return ""
}

// detail counts an owner's named fields.
func (t *owners) detail(id ownerID) int { return t.hot[id].m.detail() }

// uid returns an owner's pod UID.
func (t *owners) uid(id ownerID) string { return t.recs[id].uid() }

// uidRef returns an owner's UID prepared for comparisons (its string only when compared by
// its bytes).
func (t *owners) uidRef(id ownerID) uidRef {
	h := &t.hot[id]
	u := uidRef{key: h.key, form: h.m.form(), uh: h.m.uh()}
	if u.form == uidLong { // (else its bytes are not needed: the record stays cold)
		u.s = t.recs[id].uid()
	}
	return u
}

// uidIs reports whether an owner's UID is u (exact: the inline key, or the bytes after the
// fingerprint; an owner without a UID has none).
func (t *owners) uidIs(id ownerID, u *uidRef) bool {
	h := &t.hot[id]
	if f := h.m.form(); f != u.form || f == uidNone {
		return false
	} else if f != uidLong {
		return h.key == u.key
	}
	return h.m.uh() == u.uh && t.recs[id].uid() == u.s
}

// meta returns an owner's packed metadata.
func (t *owners) meta(id ownerID) meta { return t.hot[id].m }

// hotAt and recAt are where owner id's hot entry and render record are, for prefetches: no
// bounds check, since a prefetch never faults and an id past the arrays' ends only wastes it.
func (t *owners) hotAt(id ownerID) uintptr {
	return uintptr(unsafe.Pointer(unsafe.SliceData(t.hot))) + uintptr(id)*unsafe.Sizeof(ownerHot{})
}
func (t *owners) recAt(id ownerID) uintptr {
	return uintptr(unsafe.Pointer(unsafe.SliceData(t.recs))) + uintptr(id)*unsafe.Sizeof(ownerRec{})
}

// stringTable interns the shared strings of owners with reference counts.
type stringTable struct {
	recs  []stringRec // recs[0] unused
	free  []uint32
	index map[string]uint32
}

type stringRec struct {
	s      string
	refs   uint32
	zone   uint32            // for a node's name: its zone's string (0: none; zone.go)
	labels map[string]string // s parsed, once an owner carries s as its labels (shared, read-only)
}

// at returns string id's record without a bounds check: ids come from the table's own records
// (an owner's strings, a node name's zone), which are never shrunk.
func (t *stringTable) at(id uint32) *stringRec {
	return (*stringRec)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(t.recs)), uintptr(id)*unsafe.Sizeof(stringRec{})))
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
	z := r.zone
	delete(t.index, r.s)
	*r = stringRec{}
	t.free = append(t.free, id)
	if z != 0 && z != id {
		t.unref(z)
	}
}
