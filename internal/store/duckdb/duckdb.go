// Package duckdb is the embedded default store: raw flows, minute and hour edges in a DuckDB
// database file inside a data directory. It is the only package that links DuckDB.
package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/collector/aggregate"
	"github.com/flowscope/flowscope/internal/store"
)

// Config configures the store.
type Config struct {
	Dir          string          // data directory (created if missing)
	Retention    store.Retention // zero fields take store.DefaultRetention's
	MinFreeBytes uint64          // stop accepting writes when the disk has less free; default 256 MiB
	FlushEvery   time.Duration   // how often closed minutes are written and hours rolled up; default 5s
	Aggregate    aggregate.Config
	MemoryLimit  string // DuckDB memory_limit, e.g. "1GB"; default 1GB
	Threads      int    // DuckDB threads; default 2
	Now          func() time.Time
	Logger       *slog.Logger
	Registry     *prometheus.Registry // optional
}

// Store is the DuckDB store. Write, the queries and Run may be called concurrently.
type Store struct {
	cfg  Config
	path string
	db   *sql.DB
	log  *slog.Logger
	now  func() time.Time
	agg  *aggregate.Aggregator
	m    *metrics

	wmu      sync.Mutex // serialises writes to the database
	wconn    *sql.Conn  // the connection writes use
	flowApp  *duckdb.Appender
	nextSeq  uint64
	pending  []store.EdgeRow // flushed from the aggregator but not yet written
	pendWM   uint64
	stopped  error // set when ingestion stopped for good (the database failed)
	dict     *dictionary
	edges    *edgeKeys
	levels   []*level // coarser levels rolled up from finer ones, finest first
	lastTrim time.Time
}

const dbFile = "flowscope.duckdb"

// Open opens (or creates) the store in cfg.Dir, migrates its schema and replays raw flows not
// yet aggregated. A data directory written by a newer schema is refused with ErrNewerSchema.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = withDefaults(cfg)
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	path := filepath.Join(cfg.Dir, dbFile)
	conn, err := duckdb.NewConnector(path, nil)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	db := sql.OpenDB(conn)
	s := &Store{cfg: cfg, path: path, db: db, log: cfg.Logger.With("component", "store"), now: cfg.Now, agg: aggregate.New(cfg.Aggregate),
		levels: []*level{{table: "edges_10m", minutes: 10, meta: "rolled10_until"}, {table: "edges_hour", minutes: 60, meta: "rolled_until"},
			{table: "edges_6h", minutes: 360, meta: "rolled6h_until"}}}
	if err := s.init(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

func withDefaults(cfg Config) Config {
	d := store.DefaultRetention
	if cfg.Retention.Raw <= 0 {
		cfg.Retention.Raw = d.Raw
	}
	if cfg.Retention.Minute <= 0 {
		cfg.Retention.Minute = d.Minute
	}
	if cfg.Retention.Hour <= 0 {
		cfg.Retention.Hour = d.Hour
	}
	if cfg.MinFreeBytes == 0 {
		cfg.MinFreeBytes = 256 << 20
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 5 * time.Second
	}
	if cfg.MemoryLimit == "" {
		cfg.MemoryLimit = "1GB"
	}
	if cfg.Threads <= 0 {
		cfg.Threads = 2
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

func (s *Store) init(ctx context.Context) error {
	settings := fmt.Sprintf(`SET memory_limit = '%s'; SET threads = %d`, s.cfg.MemoryLimit, s.cfg.Threads)
	if _, err := s.db.ExecContext(ctx, settings); err != nil {
		return fmt.Errorf("configuring duckdb: %w", err)
	}
	if err := migrate(ctx, s.db, s.path); err != nil {
		return err
	}
	var err error
	if s.wconn, err = s.db.Conn(ctx); err != nil {
		return fmt.Errorf("opening write connection: %w", err)
	}
	if s.dict, err = loadDictionary(ctx, s.db); err != nil {
		return err
	}
	if s.edges, err = loadEdgeKeys(ctx, s.db); err != nil {
		return err
	}
	if err := s.loadState(ctx); err != nil {
		return err
	}
	s.m = newMetrics(s.cfg.Registry, s)
	if err := s.replay(ctx); err != nil {
		return err
	}
	return nil
}

func (s *Store) loadState(ctx context.Context) error {
	wm, err := getMeta(ctx, s.db, "minute_seq")
	if err != nil {
		return fmt.Errorf("reading watermark: %w", err)
	}
	var maxSeq sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(seq) FROM flows`).Scan(&maxSeq); err != nil {
		return fmt.Errorf("reading last sequence: %w", err)
	}
	s.nextSeq = uint64(max(wm, maxSeq.Int64)) + 1
	s.pendWM = uint64(wm)
	for _, l := range s.levels {
		rolled, err := getMeta(ctx, s.db, l.meta)
		if err != nil {
			return fmt.Errorf("reading rollup state: %w", err)
		}
		since, err := getMeta(ctx, s.db, l.meta+"_since")
		if err != nil {
			return fmt.Errorf("reading rollup state: %w", err)
		}
		if rolled == 0 {
			// A new level (a new store, or one a migration added): it holds the blocks
			// from now on; older ranges read the finer levels.
			rolled = s.now().Unix() / 60 / l.minutes * l.minutes
			since = rolled
			if _, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO meta VALUES (?, ?), (?, ?)`, l.meta, rolled, l.meta+"_since", since); err != nil {
				return fmt.Errorf("initialising rollup state: %w", err)
			}
		}
		l.rolled.Store(rolled)
		l.since.Store(since)
	}
	return nil
}

// level is a table of edge rows rolled up into blocks of minutes from the next finer level
// (minute rows for the first).
type level struct {
	table   string
	minutes int64
	meta    string       // meta key of rolled (and, suffixed _since, of since)
	rolled  atomic.Int64 // unix minute before which its rows are complete
	since   atomic.Int64 // unix minute from which its rows are complete (0: from the start)
}

func (l *level) step() time.Duration { return time.Duration(l.minutes) * time.Minute }

// Close flushes every aggregate still held and closes the database.
func (s *Store) Close() error {
	ferr := s.flush(context.Background(), true)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.flowApp != nil {
		_ = s.flowApp.Close()
	}
	_ = s.wconn.Close()
	return errors.Join(ferr, s.db.Close())
}

// Run writes closed minutes, rolls hours up and applies retention until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.Maintain(ctx); err != nil {
				s.log.Warn("store maintenance failed", "err", err)
			}
		}
	}
}

// Maintain runs one round of Run's work: flush closed minutes, roll up completed hours, apply
// retention (at most every ten minutes). Tests call it with an injected clock.
func (s *Store) Maintain(ctx context.Context) error {
	if err := s.flush(ctx, false); err != nil {
		return err
	}
	if err := s.rollup(ctx); err != nil {
		return err
	}
	if now := s.now(); now.Sub(s.lastTrim) >= 10*time.Minute {
		s.lastTrim = now
		return s.trim(ctx, now)
	}
	return nil
}

// withDriverConn runs f on the write connection's driver connection (wmu held by the caller).
func (s *Store) withDriverConn(f func(driver.Conn) error) error {
	return s.wconn.Raw(func(dc any) error { return f(dc.(driver.Conn)) })
}
