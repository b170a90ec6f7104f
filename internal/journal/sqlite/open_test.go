package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
)

var t0 = time.Date(2024, 3, 10, 7, 0, 0, 0, time.UTC)

func mustOpen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// fill writes n ended runs of schedule, one batch each.
func fill(t *testing.T, s *Store, schedule string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Minute)
		id, _, err := s.BeginRun(ctx, journal.RunKey{Schedule: schedule, ScheduledAt: at}, journal.RunRecord{
			Plan: []jobs.AppPlan{{App: jobs.App{ID: "app-1"}, Instances: []string{strings.Repeat("i", 200)}}}, Started: at})
		if err != nil {
			t.Fatalf("BeginRun: %v", err)
		}
		if err := s.PlanBatch(ctx, id, "app-1", 1, []string{fmt.Sprintf("i-%d", i)}, at); err != nil {
			t.Fatalf("PlanBatch: %v", err)
		}
		if err := s.EndRun(ctx, id, jobs.RunOutcome{Result: jobs.ResultSuccess, Ended: at.Add(time.Second)}); err != nil {
			t.Fatalf("EndRun: %v", err)
		}
	}
}

func TestOpenSetsPragmas(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	tests := []struct {
		pragma string
		want   string
	}{
		{pragma: "journal_mode", want: "wal"},
		{pragma: "synchronous", want: "1"}, // NORMAL
		{pragma: "foreign_keys", want: "1"},
		{pragma: "busy_timeout", want: "5000"},
	}
	for _, tt := range tests {
		t.Run(tt.pragma, func(t *testing.T) {
			var got string
			if err := s.db.QueryRow("PRAGMA " + tt.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
			}
			if got != tt.want {
				t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
			}
		})
	}
}

func TestFileModes(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
	}{
		{name: "a new file is created private"},
		{name: "a world-readable file is made private", prepare: func(t *testing.T, path string) {
			s := mustOpen(t, path)
			fill(t, s, "s1", 1)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "world-readable -wal and -shm files left by a crash are made private", prepare: func(t *testing.T, path string) {
			for _, p := range []string{path + "-wal", path + "-shm"} {
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			if tt.prepare != nil {
				tt.prepare(t, path)
			}
			s := mustOpen(t, path)
			fill(t, s, "s2", 2) // the WAL and its index exist while the store is open
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatalf("Stat(%s): %v", p, err)
				}
				if perm := fi.Mode().Perm(); perm&0o077 != 0 {
					t.Errorf("mode of %s = %v, want no group or other bits (0600)", filepath.Base(p), perm)
				}
			}
		})
	}
}

func TestOpenRejectsCorruptFiles(t *testing.T) {
	tests := []struct {
		name  string
		write func(t *testing.T, path string)
	}{
		{name: "random bytes", write: func(t *testing.T, path string) {
			r := rand.New(rand.NewPCG(1, 2))
			b := make([]byte, 64<<10)
			for i := range b {
				b[i] = byte(r.UintN(256))
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a short text file", write: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("schedules: []\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a SQLite header followed by garbage", write: func(t *testing.T, path string) {
			b := append([]byte("SQLite format 3\x00"), make([]byte, 8192)...)
			for i := 16; i < len(b); i++ {
				b[i] = byte(i * 7)
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a real database truncated to half", write: func(t *testing.T, path string) {
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			fill(t, s, "s300", 300)
			if err := s.Close(); err != nil { // checkpoints the WAL into the file
				t.Fatal(err)
			}
			if _, err := os.Stat(path + "-wal"); err == nil {
				t.Fatalf("%s-wal still exists after Close", path)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() < 64<<10 {
				t.Fatalf("database is %d bytes, want a multi-page file to truncate", fi.Size())
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			tt.write(t, path)
			s, err := Open(path, Options{})
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%s) = nil error, want a corrupt-file error", tt.name)
			}
			t.Logf("Open() = %v", err)
			want := "state file " + path + " is not a SQLite database or is corrupt: "
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Open() = %q, want it to contain %q", err, want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		path    func(dir string) string
		opts    Options
		wantErr string
	}{
		{name: "a missing directory", path: func(dir string) string { return filepath.Join(dir, "nope", "state.db") }, wantErr: "no such file or directory"},
		{name: "a directory", path: func(dir string) string { return dir }, wantErr: "is a directory"},
		{name: "a negative generation", path: func(dir string) string { return filepath.Join(dir, "state.db") }, opts: Options{Generation: -1}, wantErr: "negative lease generation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.path(t.TempDir()), tt.opts)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open() = nil error, want %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open() = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpenPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?#%")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "state 100%.db")
	s := mustOpen(t, path)
	fill(t, s, "s1", 1)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Stat(%q) = %v, want the file at exactly that path", path, err)
	}
}

// rawDB opens path without the store, for building old and future schemas.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

func schemaVersion(t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMigrations(t *testing.T) {
	if SchemaVersion() < 2 {
		t.Fatalf("SchemaVersion() = %d, want >= 2 for the upgrade test", SchemaVersion())
	}
	t.Run("a version-1 database is migrated and keeps its rows", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		db := rawDB(t, path)
		ctx := context.Background()
		if err := migrate(ctx, db, path, 1); err != nil {
			t.Fatalf("migrate(1) = %v", err)
		}
		if _, err := db.Exec(`INSERT INTO runs (schedule, scheduled_at, kind, started_at, ended_at, result, generation)
			VALUES ('nightly', ?, 'run', ?, ?, 'success', 1)`, t0.UnixNano(), t0.UnixNano(), t0.Add(time.Minute).UnixNano()); err != nil {
			t.Fatal(err)
		}
		if got := schemaVersion(t, db); got != 1 {
			t.Fatalf("schema version = %d, want 1", got)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		s := mustOpen(t, path)
		if got := schemaVersion(t, s.db); got != SchemaVersion() {
			t.Errorf("schema version after Open = %d, want %d", got, SchemaVersion())
		}
		var idx int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'runs_open'`).Scan(&idx); err != nil || idx != 1 {
			t.Errorf("index runs_open after Open = %d, %v, want 1 (migration 2 applied)", idx, err)
		}
		runs, err := s.Runs(ctx, journal.RunFilter{})
		if err != nil || len(runs) != 1 || runs[0].Result != jobs.ResultSuccess {
			t.Errorf("Runs() after migrating = %+v, %v, want the version-1 run", runs, err)
		}
	})
	t.Run("reopening a current database applies nothing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		s := mustOpen(t, path)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = mustOpen(t, path)
		var n int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != SchemaVersion() {
			t.Errorf("schema_migrations rows = %d, %v, want %d", n, err, SchemaVersion())
		}
	})
	t.Run("a database from a newer version is refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		s := mustOpen(t, path)
		if _, err := s.db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, SchemaVersion()+1); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path, Options{})
		want := fmt.Sprintf("state file %s has schema version %d, newer than this binary's %d: upgrade the scheduler", path, SchemaVersion()+1, SchemaVersion())
		if err == nil || err.Error() != want {
			t.Errorf("Open() = %v, want %q", err, want)
		}
	})
}

func TestPruneDeletesBatchesAndApps(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	ctx := context.Background()
	fill(t, s, "s3", 3)
	id, _, err := s.BeginRun(ctx, journal.RunKey{Schedule: "open", ScheduledAt: t0}, journal.RunRecord{Started: t0})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PlanBatch(ctx, id, "app-1", 1, []string{"i-1"}, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.EndApp(ctx, id, jobs.AppOutcome{App: jobs.App{ID: "app-1"}, Result: jobs.ResultSuccess}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(ctx, t0.Add(24*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("Prune() = %d, %v, want 3", n, err)
	}
	tests := []struct {
		table string
		want  int
	}{
		{table: "runs", want: 1},
		{table: "batches", want: 1},
		{table: "apps", want: 1},
		{table: "schedule_times", want: 2},
	}
	for _, tt := range tests {
		var got int
		if err := s.db.QueryRow("SELECT COUNT(*) FROM " + tt.table).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("rows in %s after Prune = %d, want %d (the open run's only)", tt.table, got, tt.want)
		}
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Errorf("IntegrityCheck() = %v", err)
	}
}
