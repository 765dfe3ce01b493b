package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/flowscope/flowscope/internal/api"
	"github.com/flowscope/flowscope/internal/pathways"
)

func init() {
	register("paths", "pathway validation: paths check --expect FILE", runPaths)
}

func runPaths(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		return usageError{errors.New("usage: flowscope paths check --expect FILE [flags]")}
	}
	fs := newFlagSet("paths check")
	var q queryFlags
	q.register(fs, "table or json")
	expect := fs.String("expect", "", "YAML file of expected paths (\"ns/a -> ns/b:port\")")
	baseFrom := fs.String("baseline-from", "", "start of the baseline window (default: a window as long as the checked one, just before it)")
	baseTo := fs.String("baseline-to", "", "end of the baseline window (default: --from)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if err := q.checkOutput("table", "json"); err != nil {
		return err
	}
	req := api.PathsRequest{BaselineFrom: *baseFrom, BaselineTo: *baseTo}
	if *expect != "" {
		data, err := os.ReadFile(*expect)
		if err != nil {
			return fmt.Errorf("reading expectations: %w", err)
		}
		if req.Expect, err = pathways.ParseExpectations(*expect, data); err != nil {
			return err
		}
	}
	var rep pathways.Report
	raw, err := q.call(ctx, "POST", "/api/v1/paths/check", q.values(), req, &rep)
	if err != nil {
		return err
	}
	if q.output == "json" {
		return printRaw(raw)
	}
	return printPaths(rep)
}

func printPaths(rep pathways.Report) error {
	if len(rep.Expected) > 0 {
		rows := make([][]string, 0, len(rep.Expected))
		for _, x := range rep.Expected {
			rows = append(rows, []string{fmt.Sprintf("%s -> %s:%d", x.From, x.To, x.Port), string(x.Status),
				fmt.Sprint(x.Counters.Opened), fmt.Sprint(x.Counters.Failed()), pct(x.FailureRate), pct(x.RetransmitRate)})
		}
		if err := table([]string{"EXPECTED PATH", "STATUS", "CONNS", "FAILED", "FAIL%", "RETRANS%"}, rows); err != nil {
			return err
		}
		fmt.Fprintln(queryOut)
	}
	fmt.Fprintf(queryOut, "Changes since the baseline %s – %s:\n", rep.BaselineFrom.Format("2006-01-02 15:04"), rep.BaselineTo.Format("15:04"))
	if len(rep.Changes) == 0 {
		fmt.Fprintln(queryOut, "  none: every dependency healthy in the baseline still works")
		return nil
	}
	rows := make([][]string, 0, len(rep.Changes))
	for _, c := range rep.Changes {
		rows = append(rows, []string{c.Change, c.Edge.String(), fmt.Sprint(c.Baseline.Opened), fmt.Sprint(c.Current.Opened), pct(c.FailureRate)})
	}
	return table([]string{"CHANGE", "EDGE", "BASELINE CONNS", "CONNS", "FAIL%"}, rows)
}
