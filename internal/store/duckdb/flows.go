package duckdb

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/store"
)

// scanFlows reads raw flows (FROM flows + tail) and rebuilds them as conns.
func (s *Store) scanFlows(ctx context.Context, tail string, args []any, f func(uint64, flow.Conn)) error {
	rows, err := s.db.QueryContext(ctx, `SELECT `+flowColumns+` FROM flows `+tail, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq uint64
		var endMs int64
		var dur, client, server, vip, retrans uint32
		var caddr, saddr string
		var resets uint16
		var outcome, flags uint8
		var c flow.Conn
		if err := rows.Scan(&seq, &endMs, &dur, &client, &server, &vip, &c.Client.Port, &c.Server.Port, &caddr, &saddr,
			&c.BytesClientToServer, &c.BytesServerToClient, &retrans, &c.BytesRetransmitted, &c.ClientSrttUs, &c.ServerSrttUs,
			&resets, &outcome, &flags); err != nil {
			return err
		}
		cport, sport := c.Client.Port, c.Server.Port
		c.Client, _ = s.dict.endpoint(client)
		c.Server, _ = s.dict.endpoint(server)
		c.Client.Port, c.Server.Port = cport, sport
		if caddr != "" {
			c.Client.Addr, _ = netip.ParseAddr(caddr)
		}
		if saddr != "" {
			c.Server.Addr, _ = netip.ParseAddr(saddr)
		}
		if vip != 0 {
			v, _ := s.dict.endpoint(vip)
			c.VIP = &v
		}
		c.End = time.UnixMilli(endMs).UTC()
		c.Start = c.End.Add(-time.Duration(dur) * time.Millisecond)
		c.Retransmits, c.Resets = uint64(retrans), uint32(resets)
		if int(outcome) < len(outcomeNames) {
			c.Outcome = outcomeNames[outcome]
		}
		c.Interim = flags&flagInterim != 0
		c.Observed = observedNames[(flags>>1)&3]
		c.JoinDisagreement = flags&flagDisagree != 0
		f(seq, c)
	}
	return rows.Err()
}

func msRange(r store.Range) string {
	return fmt.Sprintf("end_ms >= %d AND end_ms < %d", r.From.UnixMilli(), r.To.UnixMilli())
}

// Flows implements store.Querier.
func (s *Store) Flows(ctx context.Context, q store.FlowQuery) ([]flow.Conn, error) {
	where := msRange(q.Range)
	if q.Edge != nil {
		src, ok1 := s.dict.nodeIDOf(q.Edge.Src)
		dst, ok2 := s.dict.nodeIDOf(q.Edge.Dst)
		if !ok1 || !ok2 {
			return nil, store.ErrNotFound
		}
		where += fmt.Sprintf(" AND client IN (%s) AND server IN (%s) AND sport = %d",
			idList(s.dict.endpointsOf(src)), idList(s.dict.endpointsOf(dst)), q.Edge.Port)
		if q.Edge.Service != "" {
			svc, _ := s.dict.nodeIDOf(q.Edge.Service)
			where += fmt.Sprintf(" AND vip IN (%s)", idList(s.dict.endpointsOf(svc)))
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []flow.Conn
	err := s.scanFlows(ctx, `WHERE `+where+` ORDER BY end_ms DESC, seq DESC LIMIT `+strconv.Itoa(limit), nil,
		func(_ uint64, c flow.Conn) { out = append(out, c) })
	if err != nil {
		return nil, fmt.Errorf("querying flows: %w", err)
	}
	return out, nil
}

// FlowGroups implements store.Querier.
func (s *Store) FlowGroups(ctx context.Context, r store.Range, namespaces []string) ([]store.FlowGroup, error) {
	where := msRange(r)
	if len(namespaces) > 0 {
		eps := idList(s.dict.endpointsOf(s.dict.nodesIn(namespaces)...))
		where += fmt.Sprintf(" AND (client IN (%s) OR server IN (%s))", eps, eps)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT client, server, sport, coalesce(caddr, ''), coalesce(saddr, ''),
		count(*)::UBIGINT, (sum(bcs) + sum(bsc))::UBIGINT, min(end_ms - dur_ms), max(end_ms)
		FROM flows WHERE `+where+` GROUP BY ALL ORDER BY ALL`)
	if err != nil {
		return nil, fmt.Errorf("querying flow groups: %w", err)
	}
	defer rows.Close()
	var out []store.FlowGroup
	for rows.Next() {
		var client, server uint32
		var sport uint16
		var caddr, saddr string
		var first, last int64
		var g store.FlowGroup
		if err := rows.Scan(&client, &server, &sport, &caddr, &saddr, &g.Flows, &g.Bytes, &first, &last); err != nil {
			return nil, fmt.Errorf("reading flow groups: %w", err)
		}
		g.Client, _ = s.dict.endpoint(client)
		g.Server, _ = s.dict.endpoint(server)
		g.Server.Port = sport
		if caddr != "" {
			g.Client.Addr, _ = netip.ParseAddr(caddr)
		}
		if saddr != "" {
			g.Server.Addr, _ = netip.ParseAddr(saddr)
		}
		g.First, g.Last = time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
		out = append(out, g)
	}
	return out, rows.Err()
}

// Unattributed implements store.Querier.
func (s *Store) Unattributed(ctx context.Context, r store.Range) ([]store.ReasonCount, error) {
	var un []uint32
	for _, n := range s.dict.allNodes() {
		if n.Kind == flow.EndpointUnattributed {
			id, _ := s.dict.nodeIDOf(n.ID)
			un = append(un, s.dict.endpointsOf(id)...)
		}
	}
	if len(un) == 0 {
		return nil, nil
	}
	ids := idList(un)
	q := fmt.Sprintf(`SELECT side, id, count(*)::UBIGINT, sum(b)::UBIGINT FROM (
		SELECT 'client' AS side, client AS id, bcs + bsc AS b FROM flows WHERE %[1]s AND client IN (%[2]s)
		UNION ALL SELECT 'server', server, bcs + bsc FROM flows WHERE %[1]s AND server IN (%[2]s))
		GROUP BY side, id`, msRange(r), ids)
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("querying unattributed flows: %w", err)
	}
	defer rows.Close()
	type k struct {
		side   string
		reason flow.Reason
	}
	agg := map[k]*store.ReasonCount{}
	for rows.Next() {
		var side string
		var id uint32
		var n, b uint64
		if err := rows.Scan(&side, &id, &n, &b); err != nil {
			return nil, fmt.Errorf("reading unattributed flows: %w", err)
		}
		e, _ := s.dict.endpoint(id)
		kk := k{side, e.Reason}
		if agg[kk] == nil {
			agg[kk] = &store.ReasonCount{Reason: e.Reason, Side: side}
		}
		agg[kk].Flows += n
		agg[kk].Bytes += b
	}
	out := make([]store.ReasonCount, 0, len(agg))
	for _, rc := range agg {
		out = append(out, *rc)
	}
	return out, rows.Err()
}
