package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations is the schema, in order: migrations[i] takes the database from
// version i to version i+1. Append only; never edit a released migration.
//
// Times are INTEGER Unix nanoseconds (UTC). A NULL ended_at marks an open
// run. Every table carries the lease generation of the write that last
// touched the row.
var migrations = []string{
	// 1: the journal.
	`CREATE TABLE leases (
		name        TEXT    PRIMARY KEY,
		generation  INTEGER NOT NULL CHECK (generation > 0),
		holder      TEXT    NOT NULL DEFAULT '',
		acquired_at INTEGER NOT NULL,
		expires_at  INTEGER -- NULL: held until taken over (SQLite: one process owns the file)
	);
	CREATE TABLE runs (
		id            INTEGER PRIMARY KEY AUTOINCREMENT,
		schedule      TEXT    NOT NULL,
		scheduled_at  INTEGER NOT NULL,
		kind          TEXT    NOT NULL CHECK (kind IN ('run', 'fire')),
		manual        INTEGER NOT NULL DEFAULT 0,
		plan          TEXT    NOT NULL DEFAULT 'null',
		started_at    INTEGER NOT NULL,
		deadline      INTEGER,
		ended_at      INTEGER,
		result        TEXT    NOT NULL DEFAULT '',
		reason        TEXT    NOT NULL DEFAULT '',
		outcome       TEXT,
		apps          INTEGER NOT NULL DEFAULT 0,
		restarted     INTEGER NOT NULL DEFAULT 0,
		change_orders TEXT    NOT NULL DEFAULT '[]',
		generation    INTEGER NOT NULL,
		UNIQUE (schedule, scheduled_at)
	);
	CREATE TABLE batches (
		run_id          INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
		app             TEXT    NOT NULL,
		batch_index     INTEGER NOT NULL CHECK (batch_index > 0),
		instances       TEXT    NOT NULL,
		state           TEXT    NOT NULL CHECK (state IN ('submitting', 'submitted', 'ended')),
		change_order_id TEXT    NOT NULL DEFAULT '',
		submitted_at    INTEGER NOT NULL,
		result          TEXT    NOT NULL DEFAULT '',
		code            TEXT    NOT NULL DEFAULT '',
		ended_at        INTEGER,
		generation      INTEGER NOT NULL,
		PRIMARY KEY (run_id, app, batch_index)
	);
	CREATE TABLE apps (
		run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
		app        TEXT    NOT NULL,
		result     TEXT    NOT NULL,
		outcome    TEXT    NOT NULL,
		ended_at   INTEGER,
		generation INTEGER NOT NULL,
		PRIMARY KEY (run_id, app)
	);
	CREATE TABLE schedule_times (
		schedule       TEXT    PRIMARY KEY,
		last_run       INTEGER NOT NULL DEFAULT 0,
		last_success   INTEGER NOT NULL DEFAULT 0,
		last_scheduled INTEGER NOT NULL DEFAULT 0,
		generation     INTEGER NOT NULL
	);`,
	// 2: indexes for resume (open runs), history across schedules and pruning.
	`CREATE INDEX runs_open ON runs (scheduled_at) WHERE ended_at IS NULL;
	CREATE INDEX runs_scheduled ON runs (scheduled_at);
	CREATE INDEX runs_ended ON runs (ended_at) WHERE ended_at IS NOT NULL;`,
}

// SchemaVersion returns the schema version this binary writes.
func SchemaVersion() int { return len(migrations) }

// migrate brings db to version target, one migration per transaction. A
// database at a version newer than the binary knows is an error: an old
// binary must not write a schema it does not understand.
func migrate(ctx context.Context, db *sql.DB, path string, target int) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for {
		done, err := migrateOne(ctx, db, path, target)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next migration, reading the version inside the write
// transaction so two processes opening the same file do not both apply it.
func migrateOne(ctx context.Context, db *sql.DB, path string, target int) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	if v > len(migrations) {
		return false, fmt.Errorf("state file %s has schema version %d, newer than this binary's %d: upgrade the scheduler", path, v, len(migrations))
	}
	if v >= target {
		return true, nil
	}
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		return false, fmt.Errorf("migrate to version %d: %w", v+1, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v+1, time.Now().UnixNano()); err != nil {
		return false, fmt.Errorf("migrate to version %d: %w", v+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate to version %d: %w", v+1, err)
	}
	return false, nil
}
