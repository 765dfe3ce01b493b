package ownership

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flowscope/flowscope/internal/flow"
)

// TestFillEndpointWritesEveryField: rendering over an endpoint whose every field is set gives
// what rendering over a zero one does (FillEndpoint writes field by field).
func TestFillEndpointWritesEveryField(t *testing.T) {
	s := newTestStore(t, Config{})
	s.SetNodeZone("node-z", "zone-z")
	owners := []Owner{
		{Kind: flow.EndpointPod, Cluster: "c", Namespace: "ns", Workload: "w", WorkloadKind: "Deployment", Pod: "w-1", PodUID: "0123abcd-4567-89ef-0123-456789abcdef",
			Node: "node-z", ServiceAccount: "sa", Labels: "app=w,tier=web"},
		{Kind: flow.EndpointPod, PodUID: "uid-1", Namespace: "ns", Pod: "p", Node: "n", Zone: "z"},
		{Kind: flow.EndpointService, Namespace: "ns", Service: "svc"},
		{Kind: flow.EndpointNode, Node: "node-z"},
		{Kind: flow.EndpointNetwork, Network: "internet"},
		{Kind: flow.EndpointHost, Node: "n", Workload: "sshd", WorkloadKind: "systemd"},
	}
	v := s.View()
	defer v.Close()
	for _, o := range owners {
		id := s.o.intern(o)
		addr, port := netip.MustParseAddr("10.0.0.1"), uint16(80)
		var want flow.Endpoint
		v.FillEndpoint(&want, Ref(id), addr, port)
		got := filled(t)
		v.FillEndpoint(&got, Ref(id), addr, port)
		if d := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); d != "" {
			t.Errorf("%+v over a filled endpoint (-over zero +over filled):\n%s", o, d)
		}
		if want.Kind != o.Kind || want.PodUID != o.PodUID || want.Pod != o.Pod || (o.Node == "node-z" && want.Zone != "zone-z") {
			t.Errorf("%+v rendered as %+v", o, want)
		}
	}
}

// filled returns an endpoint with every field set.
func filled(t *testing.T) flow.Endpoint {
	t.Helper()
	var e flow.Endpoint
	v := reflect.ValueOf(&e).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString("stale-" + v.Type().Field(i).Name)
		case reflect.Uint16:
			f.SetUint(9)
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"stale": "x"}))
		case reflect.Struct: // the address
			f.Set(reflect.ValueOf(netip.MustParseAddr("192.0.2.9")))
		default:
			t.Fatalf("field %s of kind %s not filled", v.Type().Field(i).Name, f.Kind())
		}
	}
	return e
}

// TestFillEndpointLabels: an endpoint carries its owner's labels as a map, parsed once when the
// labels string was interned — also when the string's id is reused for other labels after its
// owner went, and when the string was first interned as another field.
func TestFillEndpointLabels(t *testing.T) {
	s := newTestStore(t, Config{})
	render := func(o Owner) map[string]string {
		t.Helper()
		id := s.o.intern(o)
		v := s.View()
		defer v.Close()
		e := filled(t)
		v.FillEndpoint(&e, Ref(id), netip.MustParseAddr("10.0.0.1"), 80)
		if want := o.Endpoint(e.Addr, e.Port).Labels; !reflect.DeepEqual(e.Labels, want) {
			t.Errorf("%+v: labels %v, want %v", o, e.Labels, want)
		}
		return e.Labels
	}
	web := Owner{Kind: flow.EndpointPod, Namespace: "ns", Pod: "w-1", PodUID: "uid-w", Labels: "app=w,tier=web"}
	if got := render(web); !reflect.DeepEqual(got, map[string]string{"app": "w", "tier": "web"}) {
		t.Fatalf("labels %v", got)
	}
	if got := render(Owner{Kind: flow.EndpointPod, Namespace: "ns", Pod: "p", PodUID: "uid-p"}); got != nil {
		t.Errorf("an owner without labels rendered %v", got)
	}
	s.o.unref(s.o.find(web)) // its last reference: its labels string is freed, its id reused next
	s.o.unref(s.o.find(web))
	render(Owner{Kind: flow.EndpointPod, Namespace: "ns", Pod: "d-1", PodUID: "uid-d", Labels: "app=db"})
	render(Owner{Kind: flow.EndpointNetwork, Network: "team=x"}) // (interned as a network name first)
	render(Owner{Kind: flow.EndpointPod, Namespace: "ns", Pod: "x-1", PodUID: "uid-x", Labels: "team=x"})
}
