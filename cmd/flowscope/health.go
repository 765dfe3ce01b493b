package main

import (
	"context"
	"fmt"

	"github.com/flowscope/flowscope/internal/health"
)

func init() {
	register("health", "availability: retransmits, RTT, failures per edge, node and zone; peak bytes/s", runHealth)
}

func runHealth(ctx context.Context, args []string) error {
	fs := newFlagSet("health")
	var q queryFlags
	q.register(fs, "table or json")
	by := fs.String("by", "failures", "rank edges by failures, retransmits, bytes or connections")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := q.checkOutput("table", "json"); err != nil {
		return err
	}
	var rep health.Report
	raw, err := q.call(ctx, "GET", "/api/v1/health", q.values("by", *by), nil, &rep)
	if err != nil {
		return err
	}
	if q.output == "json" {
		return printRaw(raw)
	}
	rows := make([][]string, 0, len(rep.Edges))
	for _, e := range rep.Edges {
		rows = append(rows, []string{e.Src, fmt.Sprintf("%s:%d", e.Dst, e.Port), fmt.Sprint(e.Closed), pct(e.FailureRate),
			fmt.Sprintf("%d/%d/%d", e.Refused, e.Timeout, e.Reset), pct(e.RetransmitRate), us(e.RTTp50us), us(e.RTTp99us),
			human(uint64(e.PeakBytesPerSecond)) + "/s", string(e.Health)})
	}
	if err := table([]string{"SOURCE", "DESTINATION", "CLOSED", "FAIL%", "REF/TMO/RST", "RETRANS%", "RTT50", "RTT99", "PEAK", "HEALTH"}, rows); err != nil {
		return err
	}
	for _, part := range []struct {
		title  string
		groups []health.GroupHealth
	}{{"NODE", rep.Nodes}, {"ZONE", rep.Zones}} {
		if len(part.groups) == 0 {
			continue
		}
		fmt.Fprintln(queryOut)
		rows = rows[:0]
		header := []string{part.title, "OPENED-OUT", "OPENED-IN", "FAIL%", "RETRANS%", "RTT50", "RTT99", "HEALTH"}
		if part.title == "NODE" {
			header = append(header[:1], append([]string{"ZONE"}, header[1:]...)...)
		}
		for _, g := range part.groups {
			row := []string{g.Name, fmt.Sprint(g.Out.Opened), fmt.Sprint(g.In.Opened), pct(g.FailureRate),
				pct(g.RetransmitRate), us(g.RTTp50us), us(g.RTTp99us), string(g.Health)}
			if part.title == "NODE" {
				row = append(row[:1], append([]string{orDash(g.Zone)}, row[1:]...)...)
			}
			rows = append(rows, row)
		}
		if err := table(header, rows); err != nil {
			return err
		}
	}
	if len(rep.ZonePaths) == 0 {
		return nil
	}
	fmt.Fprintln(queryOut)
	rows = rows[:0]
	for _, p := range rep.ZonePaths {
		rows = append(rows, []string{p.From, p.To, fmt.Sprint(p.Opened), human(p.BytesClientToServer + p.BytesServerToClient),
			human(uint64(p.PeakBytesPerSecond)) + "/s", pct(p.FailureRate), pct(p.RetransmitRate), us(p.RTTp50us), us(p.RTTp99us), string(p.Health)})
	}
	return table([]string{"FROM ZONE", "TO ZONE", "OPENED", "BYTES", "PEAK", "FAIL%", "RETRANS%", "RTT50", "RTT99", "HEALTH"}, rows)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
