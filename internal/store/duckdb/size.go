package duckdb

import (
	"context"
	"fmt"
)

// RawBytesPerFlow checkpoints the database and returns the compressed size of the flows table
// divided by its rows: the on-disk cost of one raw flow.
func (s *Store) RawBytesPerFlow(ctx context.Context) (float64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.wconn.ExecContext(ctx, `CHECKPOINT`); err != nil {
		return 0, fmt.Errorf("checkpointing: %w", err)
	}
	var rows int64
	var blocks int64
	var blockSize int64
	err := s.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM flows),
		(SELECT count(DISTINCT block_id) FROM pragma_storage_info('flows') WHERE persistent AND block_id >= 0),
		(SELECT block_size FROM pragma_database_size())`).Scan(&rows, &blocks, &blockSize)
	if err != nil {
		return 0, fmt.Errorf("measuring flows: %w", err)
	}
	if rows == 0 {
		return 0, nil
	}
	return float64(blocks*blockSize) / float64(rows), nil
}
