package duckdb

import (
	"database/sql/driver"
	"errors"
	"testing"
)

// TestAppenderRollsBackWithTransaction: rows appended inside inTx vanish when it fails, and
// the edge keys allocated in it are forgotten.
func TestAppenderRollsBackWithTransaction(t *testing.T) {
	clk := &clock{t: t0}
	s := open(t, t.TempDir(), clk)
	defer s.Close()
	s.wmu.Lock()
	err := s.inTx(func(dc driver.Conn) error {
		if _, err := s.edges.resolve(t.Context(), dc, []edgeIDs{{src: 1, dst: 2, port: 80, dir: 1}}); err != nil {
			return err
		}
		return errors.New("fail")
	})
	s.wmu.Unlock()
	if err == nil {
		t.Fatal("inTx passed")
	}
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM edge_keys`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d edge keys after rollback (%v)", n, err)
	}
	if len(s.edges.pending) != 0 || len(s.edges.keys) != 1 {
		t.Fatalf("in-memory keys after rollback: %d pending, %d", len(s.edges.pending), len(s.edges.keys))
	}
}
