package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/journal"
	"github.com/sae-scheduler/sae-scheduler/internal/journal/sqlite"
)

// cmdHistory lists recent runs and recorded skipped fires from the run
// journal, newest first. It reads the journal only: no SAE call, no
// credentials. Exit 2: a usage or configuration error, or a state file that
// is missing, corrupt or not a database.
func cmdHistory(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("history", stderr)
	path := fs.String("config", "", "schedules `FILE` (for state.path)")
	statePath := fs.String("state", "", "the run journal's SQLite `FILE` (default: state.path of the config)")
	schedule := fs.String("schedule", "", "only this schedule's runs")
	n := fs.Int("n", 20, "how many runs, newest first")
	asJSON := fs.Bool("json", false, "print JSON (as GET /api/v1/runs)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "scheduler history: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *n < 1 {
		fmt.Fprintln(stderr, "scheduler history: -n must be at least 1")
		return exitUsage
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return exitUsage
	}
	file := cfg.State.Path
	if *statePath != "" {
		file = *statePath
	}
	// Opening would create an empty journal: say there is none instead.
	if _, err := os.Stat(file); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "scheduler history: no state file at %s (has the daemon run with it? see -state)\n", file)
		} else {
			fmt.Fprintln(stderr, "scheduler history:", err)
		}
		return exitUsage
	}
	store, err := sqlite.Open(file, sqlite.Options{})
	if err != nil {
		fmt.Fprintln(stderr, "scheduler history: state:", err)
		return exitUsage
	}
	defer store.Close()
	runs, err := store.Runs(ctx, journal.RunFilter{Schedule: *schedule, Limit: *n})
	if err != nil {
		fmt.Fprintln(stderr, "scheduler history:", err)
		return exitFailure
	}
	if *asJSON {
		if runs == nil {
			runs = []journal.RunSummary{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(runs); err != nil {
			fmt.Fprintln(stderr, "scheduler history:", err)
			return exitFailure
		}
		return exitOK
	}
	writeHistory(stdout, runs)
	return exitOK
}

// writeHistory prints runs as a table: one line per run or recorded fire.
func writeHistory(w io.Writer, runs []journal.RunSummary) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "no runs recorded")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEDULED (UTC)\tSCHEDULE\tRESULT\tREASON\tDURATION\tAPPS\tRESTARTED\tCHANGE ORDERS")
	for _, r := range runs {
		name := r.Schedule
		if r.Manual {
			name += " (manual)"
		}
		result, dur := string(r.Result), r.Duration.Round(time.Millisecond).String()
		switch {
		case r.Fire:
			dur = "-"
		case r.Result == "":
			result, dur = "open", "-" // in progress, or left by a crash until the next start
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", r.ScheduledAt.UTC().Format(time.RFC3339Nano), name, result,
			dash(r.Reason), dur, r.Apps, r.Restarted, dash(strings.Join(r.ChangeOrders, ",")))
	}
	_ = tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
