package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/journal"
	"github.com/sae-scheduler/sae-scheduler/internal/journal/sqlite"
)

// The crash child: the test binary re-executed with these variables set
// writes runs until it is killed, printing each write after it committed.
const (
	envCrashDB      = "JOURNAL_CRASH_CHILD_DB"
	envCrashFirst   = "JOURNAL_CRASH_CHILD_FIRST"
	envCrashWriters = "JOURNAL_CRASH_CHILD_WRITERS"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envCrashDB); path != "" {
		first, _ := strconv.Atoi(os.Getenv(envCrashFirst))
		writers, _ := strconv.Atoi(os.Getenv(envCrashWriters))
		os.Exit(crashChild(path, first, max(writers, 1)))
	}
	os.Exit(m.Run())
}

// crashChild writes run after run: BeginRun, PlanBatch, RecordChangeOrder,
// EndBatch, then EndRun for even runs. Each line it prints ("<op> <run>") is
// a write that returned nil. It stops by itself after 100,000 runs. With
// several writers, each writes every writers-th run, concurrently: their
// writes commit in groups.
func crashChild(path string, first, writers int) int {
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	// os.Stdout is unbuffered: each line is one write(2), nothing held back.
	// Lines are shorter than PIPE_BUF: writers' lines never interleave.
	ack := func(op string, i int) { fmt.Fprintf(os.Stdout, "%s %d\n", op, i) }
	errs := make(chan error, writers)
	for w := range writers {
		go func() { errs <- crashWrite(ctx, s, first+w, first+100_000, writers, ack) }()
	}
	for range writers {
		if err := <-errs; err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// crashWrite writes runs from, from+step, ... below to.
func crashWrite(ctx context.Context, s *sqlite.Store, from, to, step int, ack func(op string, i int)) error {
	for i := from; i < to; i += step {
		k := crashKey(i)
		id, _, err := s.BeginRun(ctx, k, journal.RunRecord{Started: k.ScheduledAt, Deadline: k.ScheduledAt.Add(time.Hour)})
		if err != nil {
			return err
		}
		ack("begin", i)
		steps := []struct {
			op string
			do func() error
		}{
			{op: "plan", do: func() error { return s.PlanBatch(ctx, id, "app-1", 1, []string{"i-1", "i-2"}, k.ScheduledAt) }},
			{op: "co", do: func() error { return s.RecordChangeOrder(ctx, id, "app-1", 1, fmt.Sprintf("co-%d", i)) }},
			{op: "batch", do: func() error {
				return s.EndBatch(ctx, id, "app-1", 1, jobs.ResultSuccess, "", k.ScheduledAt.Add(time.Minute))
			}},
		}
		if i%2 == 0 {
			steps = append(steps, struct {
				op string
				do func() error
			}{op: "end", do: func() error {
				return s.EndRun(ctx, id, jobs.RunOutcome{Result: jobs.ResultSuccess, Ended: k.ScheduledAt.Add(2 * time.Minute)})
			}})
		}
		for _, st := range steps {
			if err := st.do(); err != nil {
				return err
			}
			ack(st.op, i)
		}
	}
	return nil
}

func crashKey(i int) journal.RunKey {
	return journal.RunKey{Schedule: "crash", ScheduledAt: benchT0.Add(time.Duration(i) * time.Minute)}
}

// TestCrashKeepsCommittedWrites kills a writing child with SIGKILL at random
// points, several times over the same file, and checks after each kill that
// every write the child saw commit is in the file and the file is consistent.
func TestCrashKeepsCommittedWrites(t *testing.T) {
	tests := []struct {
		name    string
		writers int
	}{
		{name: "one writer, one transaction per write", writers: 1},
		{name: "eight concurrent writers, group commits", writers: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			r := rand.New(rand.NewPCG(7, 11))
			const rounds = 4
			acked := map[string]bool{} // "op run"
			for round := range rounds {
				killAfter := 50 + r.IntN(400) // acknowledged writes before the kill
				first := round * 1_000_000
				n := runAndKill(t, path, first, tt.writers, killAfter, acked)
				wal := int64(-1)
				if fi, err := os.Stat(path + "-wal"); err == nil {
					wal = fi.Size()
				}
				// The committed writes are in the WAL (no checkpoint ran at a
				// close); reopening must recover them from it.
				t.Logf("round %d: killed after %d acknowledged writes; -wal is %d bytes", round+1, n, wal)
				checkCrashFile(t, path, acked)
			}
		})
	}
}

// runAndKill starts the child and kills it after it acknowledged killAfter
// writes, recording them in acked. It returns how many it read.
func runAndKill(t *testing.T, path string, first, writers, killAfter int, acked map[string]bool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrashDB+"="+path, envCrashFirst+"="+strconv.Itoa(first),
		envCrashWriters+"="+strconv.Itoa(writers))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	sc := bufio.NewScanner(out)
	n := 0
	for n < killAfter && sc.Scan() {
		acked[sc.Text()] = true
		n++
	}
	// SIGKILL: no deferred Close, no checkpoint, possibly mid-transaction.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	// Lines written before the kill landed were committed too.
	for sc.Scan() {
		acked[sc.Text()] = true
		n++
	}
	_ = cmd.Wait()
	if n < killAfter {
		t.Fatalf("child stopped after %d writes, before the kill at %d: %s", n, killAfter, stderr.String())
	}
	return n
}

// checkCrashFile reopens the file and checks every acknowledged write.
func checkCrashFile(t *testing.T, path string, acked map[string]bool) {
	t.Helper()
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open() after kill = %v", err)
	}
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatalf("IntegrityCheck() after kill = %v", err)
	}
	open, err := s.OpenRuns(ctx)
	if err != nil {
		t.Fatalf("OpenRuns() = %v", err)
	}
	runs, err := s.Runs(ctx, journal.RunFilter{})
	if err != nil {
		t.Fatalf("Runs() = %v", err)
	}
	type state struct {
		begun, ended bool
		batch        journal.Batch
		cos          []string
	}
	got := map[int]*state{}
	idx := func(at time.Time) int { return int(at.Sub(benchT0) / time.Minute) }
	for _, r := range runs {
		got[idx(r.ScheduledAt)] = &state{begun: true, ended: !r.Ended.IsZero(), cos: r.ChangeOrders}
	}
	for _, r := range open {
		if st := got[idx(r.Key.ScheduledAt)]; st != nil && len(r.Batches) == 1 {
			st.batch = r.Batches[0]
		}
	}
	for line := range acked {
		var op string
		var i int
		if _, err := fmt.Sscanf(line, "%s %d", &op, &i); err != nil {
			t.Fatalf("child line %q: %v", line, err)
		}
		st := got[i]
		if st == nil || !st.begun {
			t.Errorf("run %d: acknowledged %q but the run is missing", i, op)
			continue
		}
		wantCO := fmt.Sprintf("co-%d", i)
		var bad bool
		switch op {
		case "plan":
			bad = !st.ended && st.batch.Index != 1
		case "co":
			bad = len(st.cos) != 1 || st.cos[0] != wantCO
		case "batch":
			bad = !st.ended && (st.batch.State != journal.BatchEnded || st.batch.Result != jobs.ResultSuccess)
		case "end":
			bad = !st.ended
		}
		if bad {
			t.Errorf("run %d: acknowledged %q, found %+v", i, op, *st)
		}
	}
}
