package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrations[i] brings the schema from version i to i+1. Append only: never edit a released one.
var migrations = []string{
	// 1: the first schema.
	`CREATE TABLE meta (k VARCHAR PRIMARY KEY, v BIGINT NOT NULL);
	CREATE TABLE nodes (id UINTEGER PRIMARY KEY, name VARCHAR NOT NULL, doc VARCHAR NOT NULL);
	CREATE TABLE endpoints (id UINTEGER PRIMARY KEY, node UINTEGER NOT NULL, doc VARCHAR NOT NULL);
	CREATE TABLE flows (
		seq UBIGINT, end_ms BIGINT, dur_ms UINTEGER,
		client UINTEGER, server UINTEGER, vip UINTEGER,
		cport USMALLINT, sport USMALLINT, caddr VARCHAR, saddr VARCHAR,
		bcs UBIGINT, bsc UBIGINT, retrans UINTEGER, bretrans UBIGINT,
		csrtt UINTEGER, ssrtt UINTEGER, resets USMALLINT, outcome UTINYINT, flags UTINYINT);
	CREATE TABLE edges_minute (
		t INTEGER, src UINTEGER, dst UINTEGER, svc UINTEGER, port USMALLINT, dir UTINYINT,
		flows UBIGINT, bcs UBIGINT, bsc UBIGINT, opened UBIGINT, closed UBIGINT,
		refused UBIGINT, timeout UBIGINT, reset UBIGINT, retrans UBIGINT, peak UBIGINT, rtt BLOB);
	CREATE TABLE edges_hour AS SELECT * FROM edges_minute LIMIT 0;`,
	// 2: the server's RTT as a difference from the client's: both ends usually agree, so it
	// compresses to almost nothing (a raw flow must stay within 24 bytes on disk).
	`CREATE TABLE flows_v2 AS SELECT seq, end_ms, dur_ms, client, server, vip, cport, sport, caddr, saddr,
		bcs, bsc, retrans, bretrans, csrtt, resets, outcome, flags,
		(ssrtt::BIGINT - csrtt::BIGINT)::INTEGER AS srtt_delta FROM flows ORDER BY seq;
	DROP TABLE flows;
	ALTER TABLE flows_v2 RENAME TO flows;`,
	// 3: edge rows name their key by one integer (edge_keys): grouping by it is what makes
	// deps over a day of 10,000 workloads fast.
	`CREATE TABLE edge_keys AS SELECT (row_number() OVER (ORDER BY src, dst, svc, port, dir))::UINTEGER AS id, src, dst, svc, port, dir
		FROM (SELECT src, dst, svc, port, dir FROM edges_minute UNION SELECT src, dst, svc, port, dir FROM edges_hour);
	CREATE TABLE edges_minute_v3 AS SELECT e.t, k.id AS edge, e.flows, e.bcs, e.bsc, e.opened, e.closed, e.refused, e.timeout, e.reset, e.retrans, e.peak, e.rtt
		FROM edges_minute e JOIN edge_keys k USING (src, dst, svc, port, dir) ORDER BY e.t;
	CREATE TABLE edges_hour_v3 AS SELECT e.t, k.id AS edge, e.flows, e.bcs, e.bsc, e.opened, e.closed, e.refused, e.timeout, e.reset, e.retrans, e.peak, e.rtt
		FROM edges_hour e JOIN edge_keys k USING (src, dst, svc, port, dir) ORDER BY e.t;
	DROP TABLE edges_minute;
	DROP TABLE edges_hour;
	ALTER TABLE edges_minute_v3 RENAME TO edges_minute;
	ALTER TABLE edges_hour_v3 RENAME TO edges_hour;`,
	// 4: ten-minute rows, so that ranges not aligned to hours read few minute rows.
	`CREATE TABLE edges_10m AS SELECT * FROM edges_minute LIMIT 0;`,
	// 5: signed counters: DuckDB sums BIGINT columns in 64 bits when their statistics rule out
	// an overflow (UBIGINT sums always take 128 bits), almost twice as fast.
	`CREATE TABLE edges_minute_v5 AS SELECT t, edge, "flows"::BIGINT AS "flows", "bcs"::BIGINT AS "bcs", "bsc"::BIGINT AS "bsc", "opened"::BIGINT AS "opened", "closed"::BIGINT AS "closed", "refused"::BIGINT AS "refused", "timeout"::BIGINT AS "timeout", "reset"::BIGINT AS "reset", "retrans"::BIGINT AS "retrans", "peak"::BIGINT AS "peak", rtt FROM edges_minute ORDER BY t;
	DROP TABLE edges_minute;
	ALTER TABLE edges_minute_v5 RENAME TO edges_minute;
	CREATE TABLE edges_10m_v5 AS SELECT t, edge, "flows"::BIGINT AS "flows", "bcs"::BIGINT AS "bcs", "bsc"::BIGINT AS "bsc", "opened"::BIGINT AS "opened", "closed"::BIGINT AS "closed", "refused"::BIGINT AS "refused", "timeout"::BIGINT AS "timeout", "reset"::BIGINT AS "reset", "retrans"::BIGINT AS "retrans", "peak"::BIGINT AS "peak", rtt FROM edges_10m ORDER BY t;
	DROP TABLE edges_10m;
	ALTER TABLE edges_10m_v5 RENAME TO edges_10m;
	CREATE TABLE edges_hour_v5 AS SELECT t, edge, "flows"::BIGINT AS "flows", "bcs"::BIGINT AS "bcs", "bsc"::BIGINT AS "bsc", "opened"::BIGINT AS "opened", "closed"::BIGINT AS "closed", "refused"::BIGINT AS "refused", "timeout"::BIGINT AS "timeout", "reset"::BIGINT AS "reset", "retrans"::BIGINT AS "retrans", "peak"::BIGINT AS "peak", rtt FROM edges_hour ORDER BY t;
	DROP TABLE edges_hour;
	ALTER TABLE edges_hour_v5 RENAME TO edges_hour;`,
	// 6: six-hour rows, rolled up from hours: a day not aligned to hours reads 3 to 5 of
	// them instead of 22 hour rows per edge (deps over a day of 30,000 edges).
	`CREATE TABLE edges_6h AS SELECT * FROM edges_hour LIMIT 0;`,
	// 7: the zone of each endpoint (flow.Endpoint.Zone) as a column, so that raw flows can be
	// grouped by zone in SQL; per-zone edge rows are zone-path keys (direction 6) in edge_keys.
	`ALTER TABLE endpoints ADD COLUMN zone VARCHAR;`,
}

// SchemaVersion is the schema this build writes.
var SchemaVersion = len(migrations)

// ErrNewerSchema is returned by Open for a data directory written by a newer flowscope.
var ErrNewerSchema = errors.New("data directory has a newer schema")

func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'`).Scan(&n)
	if err != nil || n == 0 {
		return 0, err
	}
	var v int
	err = db.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'schema_version'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// migrate brings the schema to SchemaVersion, one transaction per step.
func migrate(ctx context.Context, db *sql.DB, path string) error {
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w: %s has schema version %d, this flowscope supports up to %d: run a newer flowscope or use another data directory", ErrNewerSchema, path, v, SchemaVersion)
	}
	for ; v < SchemaVersion; v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrating schema to version %d: %w", v+1, err)
		}
		_, err = tx.ExecContext(ctx, migrations[v])
		if err == nil {
			_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)`, v+1)
		}
		if err == nil {
			err = tx.Commit()
		} else {
			_ = tx.Rollback()
		}
		if err != nil {
			return fmt.Errorf("migrating schema to version %d: %w", v+1, err)
		}
	}
	return nil
}

func getMeta(ctx context.Context, db *sql.DB, k string) (int64, error) {
	var v int64
	err := db.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = ?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}
