package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// exitFailpoint is the status the process exits with at a failpoint: like a
// kill -9, nothing is flushed or closed on the way (os.Exit), and it is
// neither success (0), a runtime failure (1) nor a usage error (2), so a
// crash test can tell the crash it asked for from any other exit.
const exitFailpoint = 3

// failpointEnv names the environment variable that arms a failpoint:
// NAME[:N] makes the process exit with exitFailpoint the N-th time (default
// 1) a rollout reaches the failpoint NAME (one of jobs.Failpoints). It is
// for crash tests; unset, no failpoint is ever active.
const failpointEnv = "SCHEDULER_FAILPOINT"

// parseFailpoint parses a SCHEDULER_FAILPOINT value: NAME or NAME:N with N
// a positive integer. An empty value is no failpoint.
func parseFailpoint(v string) (name string, n int, err error) {
	if v == "" {
		return "", 0, nil
	}
	name, count, hasCount := strings.Cut(v, ":")
	if !slices.Contains(jobs.Failpoints, name) {
		return "", 0, fmt.Errorf("%s: unknown failpoint %q (want one of %s)", failpointEnv, name, strings.Join(jobs.Failpoints, ", "))
	}
	n = 1
	if hasCount {
		n, err = strconv.Atoi(count)
		if err != nil || n < 1 {
			return "", 0, fmt.Errorf("%s: the count after %q must be a positive integer, not %q", failpointEnv, name+":", count)
		}
	}
	return name, n, nil
}

// failpoint returns the Runner.Failpoint that exits the process at the n-th
// time name is reached, after one line on w; the other points pass. exit is
// os.Exit outside tests.
func failpoint(name string, n int, w io.Writer, exit func(int)) func(string) {
	var hits atomic.Int64
	return func(point string) {
		if point != name {
			return
		}
		if h := hits.Add(1); h == int64(n) {
			fmt.Fprintf(w, "failpoint %s reached (time %d): exiting with status %d\n", name, h, exitFailpoint)
			exit(exitFailpoint)
		}
	}
}

// failpointFromEnv arms the failpoint of SCHEDULER_FAILPOINT, if set.
func failpointFromEnv(stderr io.Writer) (func(string), error) {
	name, n, err := parseFailpoint(os.Getenv(failpointEnv))
	if err != nil || name == "" {
		return nil, err
	}
	return failpoint(name, n, stderr, os.Exit), nil
}
