package duckdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/store"
)

// dictionary maps endpoints and graph nodes to small integer ids so that raw flows and edges
// store numbers (which compress to a few bits) instead of names. Id 0 means "none".
type dictionary struct {
	mu        sync.RWMutex
	nodeIDs   map[string]uint32  // Node.ID → id
	nodes     []store.Node       // by id
	epIDs     map[string]uint32  // canonical endpoint JSON → id
	eps       map[uint32]epEntry // by id (a map: pruned ids leave no holes)
	nextEp    uint32             // next endpoint id
	fast      map[fastKey]uint32
	nsSeen    map[string]bool
	byNodeEps map[uint32][]uint32 // node id → endpoint ids
}

type epEntry struct {
	node uint32
	ep   flow.Endpoint
	doc  string
}

// fastKey identifies an endpoint without hashing its labels (a pod's labels do not change the
// pod's identity).
type fastKey struct {
	kind                                                          flow.EndpointKind
	addr                                                          netip.Addr
	port                                                          uint16
	cluster, ns, workload, pod, uid, node, zone, svc, net, reason string
}

func newDictionary() *dictionary {
	return &dictionary{
		nodeIDs: map[string]uint32{}, nodes: []store.Node{{}},
		epIDs: map[string]uint32{}, eps: map[uint32]epEntry{}, nextEp: 1,
		fast: map[fastKey]uint32{}, nsSeen: map[string]bool{}, byNodeEps: map[uint32][]uint32{},
	}
}

func loadDictionary(ctx context.Context, db *sql.DB) (*dictionary, error) {
	d := newDictionary()
	rows, err := db.QueryContext(ctx, `SELECT id, doc FROM nodes ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("loading nodes: %w", err)
	}
	for rows.Next() {
		var id uint32
		var doc string
		var n store.Node
		if err := rows.Scan(&id, &doc); err != nil {
			rows.Close()
			return nil, fmt.Errorf("loading nodes: %w", err)
		}
		if err := json.Unmarshal([]byte(doc), &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("loading node %d: %w", id, err)
		}
		d.addNode(id, n)
	}
	rows.Close()
	rows, err = db.QueryContext(ctx, `SELECT id, node, doc FROM endpoints ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("loading endpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, node uint32
		var doc string
		var e flow.Endpoint
		if err := rows.Scan(&id, &node, &doc); err != nil {
			return nil, fmt.Errorf("loading endpoints: %w", err)
		}
		if err := json.Unmarshal([]byte(doc), &e); err != nil {
			return nil, fmt.Errorf("loading endpoint %d: %w", id, err)
		}
		d.addEndpoint(id, node, doc, e)
	}
	return d, rows.Err()
}

func (d *dictionary) addNode(id uint32, n store.Node) {
	for uint32(len(d.nodes)) <= id {
		d.nodes = append(d.nodes, store.Node{})
	}
	d.nodes[id] = n
	d.nodeIDs[n.ID] = id
	if n.Namespace != "" {
		d.nsSeen[n.Namespace] = true
	}
}

func (d *dictionary) addEndpoint(id, node uint32, doc string, e flow.Endpoint) {
	d.eps[id] = epEntry{node: node, ep: e, doc: doc}
	d.nextEp = max(d.nextEp, id+1)
	d.epIDs[doc] = id
	d.fast[fastOf(e)] = id
	d.byNodeEps[node] = append(d.byNodeEps[node], id)
}

func fastOf(e flow.Endpoint) fastKey {
	return fastKey{kind: e.Kind, addr: e.Addr, port: e.Port, cluster: e.Cluster, ns: e.Namespace, workload: e.Workload,
		pod: e.Pod, uid: e.PodUID, node: e.Node, zone: e.Zone, svc: e.Service, net: e.Network, reason: string(e.Reason)}
}

// canonical strips what a raw flow row stores separately: the port (except for a Service
// address, whose port is part of it) and, outside the cluster, the address.
func canonical(e flow.Endpoint, keepPort bool) flow.Endpoint {
	if !keepPort {
		e.Port = 0
	}
	if store.Outside(e) {
		e.Addr = netip.Addr{}
	}
	return e
}

// pendingDict collects entries a write adds, to be inserted before the flows that use them
// and published only once they are stored.
type pendingDict struct {
	nodes   []pendingNode
	eps     []pendingEp
	updates []pendingNode // stored nodes whose document changes (a Kubernetes node's zone)
}

type pendingNode struct {
	id  uint32
	n   store.Node
	doc string
}

type pendingEp struct {
	id, node uint32
	doc      string
	e        flow.Endpoint
}

// lookup returns the id of e (already canonical), allocating one in p if new. Only the
// writer calls it (wmu held), so allocation needs no lock beyond the read lock.
func (d *dictionary) lookup(e flow.Endpoint, p *pendingDict) (uint32, error) {
	fk := fastOf(e)
	d.mu.RLock()
	id, ok := d.fast[fk]
	d.mu.RUnlock()
	if ok {
		return id, nil
	}
	for _, pe := range p.eps {
		if fastOf(pe.e) == fk {
			return pe.id, nil
		}
	}
	b, err := json.Marshal(e)
	if err != nil {
		return 0, fmt.Errorf("encoding endpoint: %w", err)
	}
	doc := string(b)
	d.mu.RLock()
	id, ok = d.epIDs[doc]
	nextEp := d.nextEp + uint32(len(p.eps))
	d.mu.RUnlock()
	if ok {
		return id, nil
	}
	node, err := d.nodeID(store.NodeOf(e), p)
	if err != nil {
		return 0, err
	}
	p.eps = append(p.eps, pendingEp{id: nextEp, node: node, doc: doc, e: e})
	return nextEp, nil
}

func (d *dictionary) nodeID(n store.Node, p *pendingDict) (uint32, error) {
	d.mu.RLock()
	id, ok := d.nodeIDs[n.ID]
	next := uint32(len(d.nodes)) + uint32(len(p.nodes))
	d.mu.RUnlock()
	if ok {
		return id, nil
	}
	for _, pn := range p.nodes {
		if pn.n.ID == n.ID {
			return pn.id, nil
		}
	}
	b, err := json.Marshal(n)
	if err != nil {
		return 0, fmt.Errorf("encoding node: %w", err)
	}
	p.nodes = append(p.nodes, pendingNode{id: next, n: n, doc: string(b)})
	return next, nil
}

// nodeByName returns the id of a graph node by its ID, allocating it in p if new.
func (d *dictionary) nodeByName(name string, p *pendingDict) (uint32, error) {
	if name == "" {
		return 0, nil
	}
	n := store.Node{ID: name, Name: name}
	if k, rest, ok := strings.Cut(name, "/"); ok {
		switch k {
		case "node":
			n = store.Node{ID: name, Kind: flow.EndpointNode, Name: rest}
		case "zone":
			n = store.Node{ID: name, Kind: store.ZoneKind, Name: rest}
		case "network":
			n = store.Node{ID: name, Kind: flow.EndpointNetwork, Name: rest}
		default:
			n = store.Node{ID: name, Kind: flow.EndpointPod, Namespace: k, Name: rest}
		}
	}
	return d.nodeID(n, p)
}

// k8sNode returns the id of the graph node of Kubernetes node name, allocating it in p if
// new; a zone the stored node lacks (or had otherwise) is noted in p.updates.
func (d *dictionary) k8sNode(name, zone string, p *pendingDict) (uint32, error) {
	n := store.Node{ID: "node/" + name, Kind: flow.EndpointNode, Name: name, Zone: zone}
	id, err := d.nodeID(n, p)
	if err != nil || zone == "" {
		return id, err
	}
	d.mu.RLock()
	stored := int(id) < len(d.nodes)
	if stored {
		n = d.nodes[id]
	}
	d.mu.RUnlock()
	if !stored || n.Zone == zone {
		return id, nil
	}
	for _, u := range p.updates {
		if u.id == id {
			return id, nil
		}
	}
	n.Zone = zone
	b, err := json.Marshal(n)
	if err != nil {
		return 0, fmt.Errorf("encoding node: %w", err)
	}
	p.updates = append(p.updates, pendingNode{id: id, n: n, doc: string(b)})
	return id, nil
}

// publish makes stored pending entries visible.
func (d *dictionary) publish(p *pendingDict) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range p.nodes {
		d.addNode(n.id, n.n)
	}
	for _, n := range p.updates {
		d.nodes[n.id] = n.n
	}
	for _, e := range p.eps {
		d.addEndpoint(e.id, e.node, e.doc, e.e)
	}
}

func (d *dictionary) node(id uint32) store.Node {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if int(id) < len(d.nodes) {
		return d.nodes[id]
	}
	return store.Node{}
}

func (d *dictionary) nodeIDOf(name string) (uint32, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	id, ok := d.nodeIDs[name]
	return id, ok
}

func (d *dictionary) endpoint(id uint32) (flow.Endpoint, uint32) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e := d.eps[id]
	return e.ep, e.node
}

// nodesIn returns the ids of graph nodes in any of the namespaces.
func (d *dictionary) nodesIn(namespaces []string) []uint32 {
	want := map[string]bool{}
	for _, ns := range namespaces {
		want[ns] = true
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	var ids []uint32
	for id, n := range d.nodes {
		if id > 0 && want[n.Namespace] {
			ids = append(ids, uint32(id))
		}
	}
	return ids
}

// endpointsOf returns the endpoint ids whose graph node is one of nodes.
func (d *dictionary) endpointsOf(nodes ...uint32) []uint32 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var ids []uint32
	for _, n := range nodes {
		ids = append(ids, d.byNodeEps[n]...)
	}
	return ids
}

func (d *dictionary) allNodes() []store.Node {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]store.Node, 0, len(d.nodes)-1)
	for _, n := range d.nodes[1:] {
		if n.ID != "" {
			out = append(out, n)
		}
	}
	return out
}

func (d *dictionary) hasNamespace(ns string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.nsSeen[ns]
}

// size is the number of endpoints held.
func (d *dictionary) size() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.eps)
}

// forget removes endpoints (pruned from the database) from the dictionary.
func (d *dictionary) forget(ids []uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	gone := map[uint32]bool{}
	for _, id := range ids {
		e, ok := d.eps[id]
		if !ok {
			continue
		}
		gone[id] = true
		delete(d.eps, id)
		delete(d.fast, fastOf(e.ep))
		delete(d.epIDs, e.doc)
	}
	for node, list := range d.byNodeEps {
		kept := list[:0]
		for _, id := range list {
			if !gone[id] {
				kept = append(kept, id)
			}
		}
		d.byNodeEps[node] = kept
	}
}
