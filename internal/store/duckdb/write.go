package duckdb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"strings"
	"syscall"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"golang.org/x/sys/unix"

	"github.com/flowscope/flowscope/internal/flow"
	"github.com/flowscope/flowscope/internal/store"
)

var outcomeCodes = map[flow.Outcome]uint8{flow.Open: 0, flow.OK: 1, flow.Refused: 2, flow.Timeout: 3, flow.Reset: 4, flow.Aborted: 5}
var outcomeNames = []flow.Outcome{flow.Open, flow.OK, flow.Refused, flow.Timeout, flow.Reset, flow.Aborted}

var observedCodes = map[string]uint8{"client": 0, "server": 1, "both": 2}
var observedNames = []string{"client", "server", "both", ""}

const (
	flagInterim  = 1 << 0
	flagDisagree = 1 << 3
)

func flagsOf(c flow.Conn) uint8 {
	var f uint8
	if c.Interim {
		f |= flagInterim
	}
	o, ok := observedCodes[c.Observed]
	if !ok {
		o = 3
	}
	f |= o << 1
	if c.JoinDisagreement {
		f |= flagDisagree
	}
	return f
}

// Write stores conns durably (raw) and aggregates them. On a full disk it returns an error
// wrapping store.ErrFull and stores nothing of the call.
func (s *Store) Write(ctx context.Context, conns []flow.Conn) error {
	if len(conns) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.stopped != nil {
		s.m.rejected.Add(float64(len(conns)))
		return s.stopped
	}
	if err := s.checkSpace(); err != nil {
		s.m.rejected.Add(float64(len(conns)))
		return err
	}
	var p pendingDict
	rows := make([][3]uint32, len(conns))
	for i := range conns {
		if err := s.ids(&conns[i], &rows[i], &p); err != nil {
			return err
		}
	}
	if err := s.storeDict(ctx, &p); err != nil {
		return s.failed(err, len(conns))
	}
	seq := s.nextSeq
	if err := s.appendFlows(ctx, conns, rows, seq); err != nil {
		return s.failed(err, len(conns))
	}
	s.nextSeq += uint64(len(conns))
	s.dict.publish(&p)
	for i := range conns {
		s.agg.Add(conns[i], seq+uint64(i))
	}
	s.m.written.Add(float64(len(conns)))
	return nil
}

func (s *Store) ids(c *flow.Conn, out *[3]uint32, p *pendingDict) error {
	var err error
	if out[0], err = s.dict.lookup(canonical(c.Client, false), p); err != nil {
		return err
	}
	if out[1], err = s.dict.lookup(canonical(c.Server, false), p); err != nil {
		return err
	}
	if c.VIP != nil {
		if out[2], err = s.dict.lookup(canonical(*c.VIP, true), p); err != nil {
			return err
		}
	}
	// Node totals use graph nodes named node/<name>, with the node's zone: make sure they exist.
	for _, e := range []*flow.Endpoint{&c.Client, &c.Server} {
		if e.Node != "" {
			if _, err := s.dict.k8sNode(e.Node, e.Zone, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) storeDict(ctx context.Context, p *pendingDict) error {
	if len(p.nodes) == 0 && len(p.eps) == 0 && len(p.updates) == 0 {
		return nil
	}
	// Appenders, not INSERTs: a new cluster brings thousands of endpoints at once. Nodes go
	// first; an endpoint stored without its flows (a failure in between) is harmless.
	err := s.withDriverConn(func(dc driver.Conn) error {
		if len(p.nodes) > 0 {
			rows := make([][]driver.Value, len(p.nodes))
			for i, n := range p.nodes {
				rows[i] = []driver.Value{n.id, n.n.ID, n.doc}
			}
			if err := appendAll(ctx, dc, "nodes", rows); err != nil {
				return err
			}
		}
		for _, u := range p.updates {
			if _, err := execDriver(dc, `UPDATE nodes SET doc = ? WHERE id = ?`, u.doc, u.id); err != nil {
				return err
			}
		}
		rows := make([][]driver.Value, len(p.eps))
		for i, e := range p.eps {
			rows[i] = []driver.Value{e.id, e.node, e.doc, nullable(e.e.Zone)}
		}
		return appendAll(ctx, dc, "endpoints", rows)
	})
	if err != nil {
		return fmt.Errorf("storing dictionary: %w", err)
	}
	return nil
}

// appendAll appends rows to table through a short-lived appender.
func appendAll(ctx context.Context, dc driver.Conn, table string, rows [][]driver.Value) error {
	if len(rows) == 0 {
		return nil
	}
	app, err := duckdb.NewAppenderFromConn(dc, "", table)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := app.AppendRow(r...); err != nil {
			_ = app.Clear()
			_ = app.Close()
			return err
		}
	}
	if err := app.FlushWithCancel(ctx); err != nil {
		_ = app.Clear()
		_ = app.Close()
		return err
	}
	return app.Close()
}

func nullable[T comparable](v T) driver.Value {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

func addrOf(e flow.Endpoint) driver.Value {
	if store.Outside(e) && e.Addr.IsValid() {
		return e.Addr.String()
	}
	return nil
}

func (s *Store) appendFlows(ctx context.Context, conns []flow.Conn, ids [][3]uint32, seq uint64) error {
	if s.flowApp == nil {
		err := s.withDriverConn(func(dc driver.Conn) error {
			var err error
			s.flowApp, err = duckdb.NewAppenderFromConn(dc, "", "flows")
			return err
		})
		if err != nil {
			return fmt.Errorf("creating flow appender: %w", err)
		}
	}
	for i := range conns {
		c := &conns[i]
		dur := c.End.Sub(c.Start).Milliseconds()
		dur = min(max(dur, 0), math.MaxUint32)
		err := s.flowApp.AppendRow(seq+uint64(i), c.End.UnixMilli(), uint32(dur),
			ids[i][0], ids[i][1], nullable(ids[i][2]),
			c.Client.Port, c.Server.Port, addrOf(c.Client), addrOf(c.Server),
			c.BytesClientToServer, c.BytesServerToClient, uint32(min(c.Retransmits, math.MaxUint32)), c.BytesRetransmitted,
			c.ClientSrttUs, uint16(min(c.Resets, math.MaxUint16)), outcomeCodes[c.Outcome], flagsOf(*c),
			int32(int64(c.ServerSrttUs)-int64(c.ClientSrttUs)))
		if err != nil {
			return s.dropAppender(fmt.Errorf("appending flow: %w", err))
		}
	}
	if err := s.flowApp.FlushWithCancel(ctx); err != nil {
		return s.dropAppender(fmt.Errorf("writing flows: %w", err))
	}
	return nil
}

// dropAppender discards an appender after an error (its unflushed rows included).
func (s *Store) dropAppender(err error) error {
	_ = s.flowApp.Clear()
	_ = s.flowApp.Close()
	s.flowApp = nil
	return err
}

// failed classifies a write error: a full disk or a database that cannot write any more stops
// ingestion for good (until restart) and says so.
func (s *Store) failed(err error, n int) error {
	s.m.rejected.Add(float64(n))
	if isDiskFull(err) {
		s.stopped = fmt.Errorf("%w: disk full writing %s: %v", store.ErrFull, s.path, err)
		s.m.stopped.Set(1)
		s.log.Error("ingestion stopped", "err", s.stopped)
		return s.stopped
	}
	if isInvalidated(err) {
		s.stopped = fmt.Errorf("%w: database %s can no longer write: %v", store.ErrFull, s.path, err)
		s.m.stopped.Set(1)
		s.log.Error("ingestion stopped", "err", s.stopped)
		return s.stopped
	}
	return err
}

func isDiskFull(err error) bool {
	if errors.Is(err, syscall.ENOSPC) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "no space left") || strings.Contains(msg, "disk full") || strings.Contains(msg, "could not write all bytes")
}

func isInvalidated(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "invalidated")
}

// checkSpace refuses a write while the data directory's file system has less than
// MinFreeBytes free; writes resume when space comes back.
func (s *Store) checkSpace() error {
	var st unix.Statfs_t
	if err := unix.Statfs(s.cfg.Dir, &st); err != nil {
		return nil // cannot tell: let the write itself fail if it must
	}
	free := st.Bavail * uint64(st.Bsize)
	s.m.freeBytes.Set(float64(free))
	if free < s.cfg.MinFreeBytes {
		return fmt.Errorf("%w: %s has %d bytes free, below the minimum of %d", store.ErrFull, s.cfg.Dir, free, s.cfg.MinFreeBytes)
	}
	return nil
}
