package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// queryOut is where the query commands print their answers (tests replace it).
var queryOut io.Writer = os.Stdout

// queryFlags are the flags every query command shares.
type queryFlags struct {
	server     string
	from, to   string
	namespace  string
	workload   string
	output     string
	limit      int
	httpClient *http.Client
}

func defaultServer() string {
	if s := os.Getenv("FLOWSCOPE_SERVER"); s != "" {
		return s
	}
	return "http://127.0.0.1:7480" // flowscope standalone's --listen default
}

func (q *queryFlags) register(fs *flag.FlagSet, outputs string) {
	fs.StringVar(&q.server, "server", defaultServer(), "URL of the collector's API (env FLOWSCOPE_SERVER)")
	fs.StringVar(&q.from, "from", "-1h", "start of the time range: RFC 3339, Unix seconds or -duration")
	fs.StringVar(&q.to, "to", "now", "end of the time range")
	fs.StringVar(&q.namespace, "namespace", "", "only these namespaces (comma separated)")
	fs.StringVar(&q.workload, "workload", "", "only edges of this workload (namespace/name)")
	fs.StringVar(&q.output, "o", "table", "output: "+outputs)
	fs.IntVar(&q.limit, "limit", 0, "at most this many rows (0: the server's default)")
}

func (q *queryFlags) checkOutput(allowed ...string) error {
	for _, a := range allowed {
		if q.output == a {
			return nil
		}
	}
	return usageError{fmt.Errorf("-o must be one of %s, not %q", strings.Join(allowed, ", "), q.output)}
}

// values returns the common query parameters plus extra (name, value pairs; empty values skipped).
func (q *queryFlags) values(extra ...string) url.Values {
	v := url.Values{}
	add := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	add("from", q.from)
	add("to", q.to)
	add("namespace", q.namespace)
	add("workload", q.workload)
	if q.limit > 0 {
		v.Set("limit", fmt.Sprint(q.limit))
	}
	for i := 0; i+1 < len(extra); i += 2 {
		add(extra[i], extra[i+1])
	}
	return v
}

// call performs a request against the API and decodes the JSON answer into out (and returns
// the raw body, for -o json).
func (q *queryFlags) call(ctx context.Context, method, path string, v url.Values, body any, out any) ([]byte, error) {
	u := strings.TrimRight(q.server, "/") + path
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, usageError{fmt.Errorf("bad --server %q: %w", q.server, err)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c := q.httpClient
	if c == nil {
		c = &http.Client{Timeout: 2 * time.Minute}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking %s: %w", q.server, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			if resp.StatusCode == http.StatusBadRequest {
				return nil, usageError{fmt.Errorf("the server refused the request: %s", e.Error)}
			}
			return nil, fmt.Errorf("server answered %s: %s", resp.Status, e.Error)
		}
		return nil, fmt.Errorf("server answered %s", resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("decoding the answer of %s: %w", path, err)
		}
	}
	return raw, nil
}

// table prints rows aligned in columns.
func table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(queryOut, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printRaw prints the server's JSON answer, indented.
func printRaw(raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		b.Reset()
		b.Write(raw)
	}
	_, err := queryOut.Write(b.Bytes())
	return err
}

// human formats a byte count.
func human(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%dB", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

func us(v uint32) string {
	if v == 0 {
		return "-"
	}
	if v >= 1000 {
		return fmt.Sprintf("%.1fms", float64(v)/1000)
	}
	return fmt.Sprintf("%dus", v)
}
