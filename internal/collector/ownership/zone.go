package ownership

// Zones. The store knows each node's zone (the Node label topology.kubernetes.io/zone) and
// gives it to every owner that names the node, when the owner is rendered: the node's current
// zone, whichever source named the owner. The node → zone map is the truth; the string table
// also keeps, beside a node name's string, its zone's string (stringRec.zone), so that
// rendering an endpoint (View.FillEndpoint) reads the zone without hashing the node's name.

// maxZones bounds the node → zone map (nodes of one cluster: far fewer).
const maxZones = 1 << 16

// SetNodeZone records the zone of a node (topology.kubernetes.io/zone); "" forgets it. Owners
// naming the node (its pods, the node itself, its host workloads) carry the zone when returned.
func (s *Store) SetNodeZone(node, zone string) {
	s.lock()
	defer s.mu.Unlock()
	if !s.o.setZone(node, zone) {
		s.m.rejected.WithLabelValues("full").Inc()
	}
}

// NodeZone returns the zone of a node ("" when unknown).
func (s *Store) NodeZone(node string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.o.zones[node]
}

// withZone fills o's zone from its node's when it has none.
func (s *Store) withZone(o Owner) Owner {
	if o.Zone == "" && o.Node != "" {
		o.Zone = s.o.zones[o.Node]
	}
	return o
}

// setZone records (zone "": forgets) a node's zone, in the map and beside the node's name if
// the string table holds it (owners.key sets it when the name enters the table); false when
// the map is full.
func (t *owners) setZone(node, zone string) bool {
	switch {
	case zone == "":
		delete(t.zones, node)
	case len(t.zones) < maxZones || t.zones[node] != "":
		t.zones[node] = zone
	default:
		return false
	}
	if id, ok := t.strs.find(node); ok {
		t.strs.setZone(id, zone)
	}
	return true
}

// setZone makes zone ("": none) the zone of string id, a node's name; the zone's string is
// interned with a reference that id holds until it changes or goes (none when the node is
// named as its zone: a string holds no reference on itself).
func (t *stringTable) setZone(id uint32, zone string) {
	z := uint32(0)
	switch {
	case zone == t.recs[id].s:
		z = id
	case zone != "":
		z = t.add(zone)
	}
	old := t.recs[id].zone
	t.recs[id].zone = z
	if old != 0 && old != id {
		t.unref(old)
	}
}
