// Package sqlite is the embedded journal backend: one SQLite file through
// modernc.org/sqlite (no cgo), in WAL mode with synchronous=NORMAL, which
// loses no committed transaction when the process is killed.
//
// Writes are group-committed: the writes that queue while a transaction
// holds SQLite's single writer go into the next one together, each in its
// own savepoint, under one lease check and one COMMIT (group.go). Each call
// keeps its own result and returns after its group committed.
package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	sqlitedrv "modernc.org/sqlite"

	"github.com/sae-scheduler/sae-scheduler/internal/journal"
)

var _ journal.Store = (*Store)(nil)

// leaseName is the one lease of a journal file.
const leaseName = "journal"

// Options configure Open.
type Options struct {
	// Generation is the lease generation (fencing token) every write is made
	// under. 0 means 1. Opening with a generation newer than the file's lease
	// takes the lease over: handles of older generations get ErrFenced.
	Generation int64
	// BusyTimeout is how long a write waits for another process's lock
	// (default 5s).
	BusyTimeout time.Duration
	// Holder names the lease holder in the file; informational. Default:
	// "host/pid".
	Holder string

	hooks groupHooks // this package's tests only
}

// Store is a journal.Store on a SQLite file. It is safe for concurrent use:
// one connection serializes this process's statements, busy_timeout waits
// out other processes' locks, and concurrent writes are committed in groups
// (group.go): one transaction for whatever queued while the previous one ran.
// A write's context bounds its wait in that queue (the error then wraps the
// context's, and nothing was written); once its group has begun, the write
// is made or fails with its group.
type Store struct {
	db    *sql.DB
	path  string
	gen   int64
	stmts map[string]*sql.Stmt // hotQueries, prepared by init
	group *committer           // every write goes through it
}

// Open opens (creating it with mode 0600 if missing) the SQLite journal at
// path, migrates its schema to SchemaVersion() and takes the lease at
// opts.Generation. Errors: a file that is not a SQLite database or is corrupt
// ("state file X is not a SQLite database or is corrupt: ..."), a schema
// newer than this binary, or journal.ErrFenced when the file's lease has a
// newer generation.
func Open(path string, opts Options) (*Store, error) {
	if opts.Generation == 0 {
		opts.Generation = 1
	}
	if opts.Generation < 0 {
		return nil, fmt.Errorf("open state file %s: negative lease generation %d", path, opts.Generation)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.Holder == "" {
		host, _ := os.Hostname()
		opts.Holder = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	}
	if err := prepareFile(abs); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(abs, opts.BusyTimeout))
	if err != nil {
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and it keeps this
	// process's transactions from contending for the file lock (BUSY).
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	s := &Store{db: db, path: abs, gen: opts.Generation}
	if err := s.init(opts); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.group = newCommitter(s, opts.hooks)
	return s, nil
}

// dsn builds a URI filename (escaping '?', '#' and '%' in the path) with the
// connection's pragmas. Write transactions BEGIN IMMEDIATE, so a transaction
// that reads then writes waits for the lock up front instead of failing with
// SQLITE_BUSY on upgrade.
func dsn(abs string, busy time.Duration) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	return "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() + "?" + q.Encode()
}

// sqliteMagic starts every SQLite 3 database file.
var sqliteMagic = []byte("SQLite format 3\x00")

// prepareFile creates the file with mode 0600 if it is missing, tightens the
// mode of the file and its -wal and -shm companions, and rejects a non-empty
// file without the SQLite header before the driver sees it.
func prepareFile(abs string) error {
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open state file %s: %w", abs, err)
	}
	head := make([]byte, len(sqliteMagic))
	n, rerr := io.ReadFull(f, head)
	_ = f.Close()
	switch {
	case n == 0 && errors.Is(rerr, io.EOF):
		// Empty: a new database.
	case rerr != nil && !errors.Is(rerr, io.ErrUnexpectedEOF):
		return fmt.Errorf("open state file %s: %w", abs, rerr)
	case n < len(sqliteMagic) || !bytes.Equal(head, sqliteMagic):
		return corrupt(abs, errors.New("no SQLite header"))
	}
	return chmodFiles(abs)
}

// chmodFiles makes the database and its WAL files private: they hold app and
// instance IDs. SQLite creates -wal and -shm with the database's mode, but a
// file restored from a backup may be looser.
func chmodFiles(abs string) error {
	for _, p := range []string{abs, abs + "-wal", abs + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open state file %s: %w", abs, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("open state file %s: %w", abs, err)
			}
		}
	}
	return nil
}

// corrupt is the error for a file SQLite cannot read as a database.
func corrupt(path string, err error) error {
	return fmt.Errorf("state file %s is not a SQLite database or is corrupt: %w", path, err)
}

// isCorrupt reports SQLITE_CORRUPT and SQLITE_NOTADB (any extended code).
func isCorrupt(err error) bool {
	var e *sqlitedrv.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case 11, 26: // SQLITE_CORRUPT, SQLITE_NOTADB
		return true
	}
	return false
}

// init checks the file, migrates it and takes the lease.
func (s *Store) init(opts Options) error {
	ctx := context.Background()
	var mode string
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		if isCorrupt(err) {
			return corrupt(s.path, err)
		}
		return fmt.Errorf("open state file %s: %w", s.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("open state file %s: journal_mode is %q, want wal", s.path, mode)
	}
	// quick_check reads every page: a truncated file opens fine and only
	// fails on the pages it lost, which would surface mid-run.
	if err := s.check(ctx, "quick_check"); err != nil {
		return err
	}
	if err := migrate(ctx, s.db, s.path, len(migrations)); err != nil {
		if isCorrupt(err) {
			return corrupt(s.path, err)
		}
		return err
	}
	if err := s.takeLease(ctx, opts.Holder); err != nil {
		return err
	}
	s.stmts = make(map[string]*sql.Stmt, len(hotQueries))
	for _, q := range hotQueries {
		st, err := s.db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("open state file %s: prepare: %w", s.path, err)
		}
		s.stmts[q] = st
	}
	return chmodFiles(s.path)
}

// check runs PRAGMA quick_check or integrity_check.
func (s *Store) check(ctx context.Context, pragma string) error {
	rows, err := s.db.QueryContext(ctx, "PRAGMA "+pragma)
	if err != nil {
		if isCorrupt(err) {
			return corrupt(s.path, err)
		}
		return fmt.Errorf("state file %s: %s: %w", s.path, pragma, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("state file %s: %s: %w", s.path, pragma, err)
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		if isCorrupt(err) {
			return corrupt(s.path, err)
		}
		return fmt.Errorf("state file %s: %s: %w", s.path, pragma, err)
	}
	if len(problems) > 0 {
		return corrupt(s.path, errors.New(strings.Join(problems, "; ")))
	}
	return nil
}

// IntegrityCheck runs PRAGMA integrity_check and foreign_key_check; nil
// means the file is consistent.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	if err := s.check(ctx, "integrity_check"); err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return fmt.Errorf("state file %s: foreign_key_check: %w", s.path, err)
	}
	defer rows.Close()
	if rows.Next() {
		return fmt.Errorf("state file %s: foreign_key_check: rows without their run", s.path)
	}
	return rows.Err()
}

// takeLease records the store's generation as the file's lease, unless a
// newer generation holds it.
func (s *Store) takeLease(ctx context.Context, holder string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("take lease: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var cur int64
	err = tx.QueryRowContext(ctx, `SELECT generation FROM leases WHERE name = ?`, leaseName).Scan(&cur)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("take lease: %w", err)
	case cur > s.gen:
		return fmt.Errorf("take lease: generation %d is older than the file's %d: %w", s.gen, cur, journal.ErrFenced)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO leases (name, generation, holder, acquired_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET generation = excluded.generation, holder = excluded.holder, acquired_at = excluded.acquired_at`,
		leaseName, s.gen, holder, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("take lease: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("take lease: %w", err)
	}
	return nil
}

// Path returns the database file's absolute path.
func (s *Store) Path() string { return s.path }

// Generation returns the lease generation the store writes under.
func (s *Store) Generation() int64 { return s.gen }

// Close stops the writes: those still queued for a group fail with
// ErrClosed (never hang), the group in progress commits, later calls fail
// with ErrClosed. Then it closes the database; the last connection
// checkpoints the WAL. Calling it twice is harmless.
func (s *Store) Close() error {
	s.group.close()
	for _, st := range s.stmts {
		_ = st.Close()
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state file %s: %w", s.path, err)
	}
	return nil
}
