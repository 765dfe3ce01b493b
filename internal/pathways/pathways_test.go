package pathways

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowscope/flowscope/internal/collector/aggregate"
	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/specfile"
	"github.com/flowscope/flowscope/internal/store"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type step struct {
	from, to string
	port     uint16
	svc      string
	at       time.Duration
	n        int
	failed   int // of n
}

// history aggregates a scripted history into the edges of a window, as the store would.
func history(steps []step, from, to time.Duration) []store.Edge {
	a := aggregate.New(aggregate.Config{})
	seq := uint64(0)
	for _, s := range steps {
		for i := range s.n {
			seq++
			ns, wl, _ := strings.Cut(s.from, "/")
			sns, swl, _ := strings.Cut(s.to, "/")
			c := flow.Conn{End: t0.Add(s.at), Outcome: flow.OK,
				Client: flow.Endpoint{Kind: flow.EndpointPod, Namespace: ns, Workload: wl},
				Server: flow.Endpoint{Kind: flow.EndpointPod, Namespace: sns, Workload: swl, Port: s.port}}
			if s.svc != "" {
				c.VIP = &flow.Endpoint{Kind: flow.EndpointService, Namespace: sns, Service: s.svc}
			}
			if i < s.failed {
				c.Outcome = flow.Refused
			}
			if c.End.Before(t0.Add(from)) || !c.End.Before(t0.Add(to)) {
				continue
			}
			a.Add(c, seq)
		}
	}
	rows, _ := a.Flush(time.Time{}, true)
	idx := map[store.EdgeKey]int{}
	var out []store.Edge
	for _, r := range rows {
		if r.Key.Direction >= store.NodeOut {
			continue
		}
		i, ok := idx[r.Key]
		if !ok {
			i = len(out)
			idx[r.Key] = i
			out = append(out, store.Edge{EdgeKey: r.Key})
		}
		out[i].Add(r.Counters)
	}
	return out
}

func TestDetectsVanishedAndNewlyFailingDependencies(t *testing.T) {
	h := time.Hour
	steps := []step{
		{"shop/web", "shop/api", 8080, "", 10 * time.Minute, 50, 0},        // steady, healthy
		{"shop/web", "shop/api", 8080, "", 70 * time.Minute, 50, 0},        //
		{"shop/api", "shop/db", 5432, "", 10 * time.Minute, 40, 0},         // vanishes
		{"shop/api", "pay/gw", 443, "", 10 * time.Minute, 40, 0},           // starts failing
		{"shop/api", "pay/gw", 443, "", 80 * time.Minute, 40, 30},          //
		{"shop/cron", "shop/db", 5432, "", 20 * time.Minute, 3, 0},         // too rare to be missed
		{"ops/mon", "shop/api", 9090, "", 20 * time.Minute, 20, 10},        // failing before, still failing
		{"ops/mon", "shop/api", 9090, "", 90 * time.Minute, 20, 10},        //
		{"shop/web", "shop/cart", 8080, "cart", 100 * time.Minute, 10, 1},  // new, degraded, via Service
		{"shop/web", "shop/cart", 8080, "cart", 110 * time.Minute, 100, 0}, //
	}
	base, cur := history(steps, 0, h), history(steps, h, 2*h)
	expect := []specfile.Path{
		{From: "shop/web", To: "shop/api", Port: 8080},
		{From: "shop/api", To: "shop/db", Port: 5432},
		{From: "shop/api", To: "pay/gw", Port: 443},
		{From: "shop/web", To: "shop/svc/cart", Port: 8080},
		{From: "shop/web", To: "shop/api", Port: 9999},
	}
	r := Evaluate(cur, base, expect)
	var statuses []Status
	for _, x := range r.Expected {
		statuses = append(statuses, x.Status)
	}
	if diff := cmp.Diff([]Status{Healthy, Missing, Failing, Healthy, Missing}, statuses); diff != "" {
		t.Errorf("expected paths (-want +got):\n%s", diff)
	}
	var changes []string
	for _, c := range r.Changes {
		changes = append(changes, c.Change+" "+c.Edge.String())
	}
	want := []string{"failing shop/api -> pay/gw:443", "vanished shop/api -> shop/db:5432"}
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

func TestDegradedPath(t *testing.T) {
	steps := []step{{"a/x", "a/y", 80, "", time.Minute, 100, 5}}
	r := Evaluate(history(steps, 0, time.Hour), nil, []specfile.Path{{From: "a/x", To: "a/y", Port: 80}})
	if r.Expected[0].Status != Degraded {
		t.Errorf("5%% failures: %s, want degraded", r.Expected[0].Status)
	}
}

func TestMalformedExpectations(t *testing.T) {
	tests := []struct{ text, want string }{
		{"paths:\n  - shop/web -> shop/api\n", "e.yaml:2:5: \"shop/web -> shop/api\" has no port"},
		{"paths:\n  - from: a/b\n    to: c/d\n    port: 99999\n", "e.yaml:4:11: bad port \"99999\""},
		{"paths:\n  - from: a/b\n    port: 80\n", "e.yaml:2:5: path needs \"to\""},
		{"path:\n  - a -> b:1\n", "e.yaml:1:1: unknown field \"path\""},
		{"paths: [a -> b:1\n", "e.yaml:"},
		{"paths:\n  - {from: a/b, to: c/d, port: 80, via: x}\n", "e.yaml:2:36: unknown field \"via\""},
	}
	for _, tc := range tests {
		_, err := ParseExpectations("e.yaml", []byte(tc.text))
		var se *specfile.Error
		if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("ParseExpectations(%q) = %v, want %q…", tc.text, err, tc.want)
		}
	}
	ps, err := ParseExpectations("e.yaml", []byte("paths:\n  - shop/web → shop/api:8080\n  - {from: a/b, to: c/svc/d, port: 80}\n"))
	if err != nil || len(ps) != 2 || ps[0].Port != 8080 || ps[1].To != "c/svc/d" || ps[0].Line != 2 {
		t.Errorf("good file: %+v, %v", ps, err)
	}
}
