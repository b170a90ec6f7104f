package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/sae-scheduler/sae-scheduler/internal/journal"
	"github.com/sae-scheduler/sae-scheduler/internal/journal/journaltest"
	"github.com/sae-scheduler/sae-scheduler/internal/journal/sqlite"
)

// openAt opens path under generation and closes the store when t ends.
func openAt(t *testing.T, path string, generation int64) (*sqlite.Store, error) {
	t.Helper()
	s, err := sqlite.Open(path, sqlite.Options{Generation: generation})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return s, nil
}

func TestConformance(t *testing.T) {
	journaltest.Run(t, func(t *testing.T) journal.Store {
		s, err := openAt(t, filepath.Join(t.TempDir(), "state.db"), 1)
		if err != nil {
			t.Fatalf("Open() = %v", err)
		}
		return s
	})
}

func TestFencing(t *testing.T) {
	journaltest.RunFencing(t, func(t *testing.T) journaltest.Opener {
		path := filepath.Join(t.TempDir(), "state.db")
		return func(generation int64) (journal.Store, error) {
			s, err := openAt(t, path, generation)
			if err != nil {
				return nil, err
			}
			return s, nil
		}
	})
}
