package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
	"github.com/sae-scheduler/sae-scheduler/internal/config"
	"github.com/sae-scheduler/sae-scheduler/internal/daemon"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// findSchedule returns the named schedule or prints what exists.
func findSchedule(cfg *config.Config, name string, stderr io.Writer) (jobs.Schedule, bool) {
	var names []string
	for _, s := range cfg.Schedules {
		if s.Name == name {
			return s, true
		}
		names = append(names, s.Name)
	}
	fmt.Fprintf(stderr, "scheduler: no schedule %q in %s (have: %s)\n", name, cfg.Path, strings.Join(names, ", "))
	return jobs.Schedule{}, false
}

// oneShotRunner builds a Runner on the SDK's default credential chain.
// pollInitial > 0 overrides the engine's first look at a change order.
func oneShotRunner(cfg *config.Config, obs jobs.Observer, stderr io.Writer, logFormat string, pollInitial time.Duration) (*jobs.Runner, error) {
	log, err := newLogger(logFormat, "", stderr)
	if err != nil {
		return nil, err
	}
	saeFor, err := daemon.NewSAEFactory(clock.Real{}, daemon.Hooks{})(cfg)
	if err != nil {
		return nil, err
	}
	r := &jobs.Runner{SAE: saeFor, Clock: clock.Real{}, Observer: obs, Logger: log}
	if pollInitial > 0 {
		r.Poller = jobs.AdaptivePoller{Initial: pollInitial, Min: min(pollInitial, time.Second)}
	}
	return r, nil
}

// cmdPlan prints what a run of the schedule would restart now. It makes no
// mutating call.
func cmdPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("plan", stderr)
	path := fs.String("config", "", "schedules `FILE`")
	name := fs.String("schedule", "", "schedule `NAME`")
	asJSON := fs.Bool("json", false, "print JSON")
	logFormat := fs.String("log-format", "text", "json or text")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return exitUsage
	}
	sched, ok := findSchedule(cfg, *name, stderr)
	if !ok {
		return exitUsage
	}
	runner, err := oneShotRunner(cfg, nil, stderr, *logFormat, 0)
	if err != nil {
		fmt.Fprintln(stderr, "scheduler plan:", err)
		return exitUsage
	}
	plan, err := runner.Plan(ctx, sched, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "scheduler plan:", err)
		return exitFailure
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(plan)
		return exitOK
	}
	plan.WriteText(stdout)
	return exitOK
}

// cmdTrigger runs one rollout now, in the foreground with progress on
// stderr and a summary on stdout; with -daemon it asks a running daemon to
// do it (sharing its locks, quota and journal) and follows the run.
func cmdTrigger(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("trigger", stderr)
	path := fs.String("config", "", "schedules `FILE`")
	name := fs.String("schedule", "", "schedule `NAME`")
	daemonURL := fs.String("daemon", "", "a running daemon's base `URL` (e.g. http://127.0.0.1:9750): trigger through its API")
	logFormat := fs.String("log-format", "text", "json or text")
	pollInitial := fs.Duration("poll-initial", 0, "first look at a new change order (0: the engine's 30s); lower it against the emulator")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *name == "" {
		fmt.Fprintln(stderr, "scheduler trigger: -schedule NAME is required")
		return exitUsage
	}
	if *daemonURL != "" {
		return triggerThroughDaemon(ctx, *daemonURL, *name, stdout, stderr)
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return exitUsage
	}
	sched, ok := findSchedule(cfg, *name, stderr)
	if !ok {
		return exitUsage
	}
	runner, err := oneShotRunner(cfg, daemon.Progress(stderr), stderr, *logFormat, *pollInitial)
	if err != nil {
		fmt.Fprintln(stderr, "scheduler trigger:", err)
		return exitUsage
	}
	out := runner.Run(ctx, sched, time.Now().Truncate(time.Second))
	daemon.WriteSummary(stdout, out)
	if out.Result != jobs.ResultSuccess {
		return exitFailure
	}
	return exitOK
}

func triggerThroughDaemon(ctx context.Context, base, name string, stdout, stderr io.Writer) int {
	base = strings.TrimRight(base, "/")
	token := os.Getenv("SCHEDULER_API_TOKEN")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/schedules/"+url.PathEscape(name)+"/trigger", bytes.NewReader(nil))
	req.Header.Set("Authorization", "Bearer "+token)
	var started struct {
		RunID string `json:"run_id"`
		Error string `json:"error"`
	}
	status, err := doJSON(req, &started)
	if err != nil {
		fmt.Fprintln(stderr, "scheduler trigger:", err)
		return exitFailure
	}
	if status != http.StatusAccepted {
		fmt.Fprintf(stderr, "scheduler trigger: daemon answered %d: %s\n", status, started.Error)
		if status == http.StatusNotFound {
			return exitUsage
		}
		return exitFailure
	}
	fmt.Fprintf(stderr, "run %s started by the daemon; following it\n", started.RunID)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/runs/"+url.PathEscape(started.RunID), nil)
		var run struct {
			Outcome *jobs.RunOutcome `json:"outcome"`
		}
		if _, err := doJSON(req, &run); err != nil {
			if errors.Is(err, context.Canceled) {
				return exitFailure
			}
			fmt.Fprintln(stderr, "scheduler trigger:", err)
		} else if run.Outcome != nil {
			daemon.WriteSummary(stdout, *run.Outcome)
			if run.Outcome.Result != jobs.ResultSuccess {
				return exitFailure
			}
			return exitOK
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stderr, "scheduler trigger: interrupted; the run goes on in the daemon")
			return exitFailure
		case <-time.After(2 * time.Second):
		}
	}
}

func doJSON(req *http.Request, v any) (int, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("daemon answered %d with a body that is not JSON", resp.StatusCode)
	}
	return resp.StatusCode, nil
}
