package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/firing"
)

// cmdValidate checks one or more schedules files. It never contacts SAE and
// needs no credentials.
func cmdValidate(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", stderr)
	path := fs.String("config", "", "schedules `FILE` (or give files as arguments)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	files := fs.Args()
	if *path != "" {
		files = append([]string{*path}, files...)
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: scheduler validate -config FILE | scheduler validate FILE...")
		return exitUsage
	}
	code := exitOK
	for _, f := range files {
		cfg, ok := loadConfig(f, stderr)
		if !ok {
			code = exitUsage
			continue
		}
		fmt.Fprintf(stdout, "%s: ok (%d schedules)\n", f, len(cfg.Schedules))
	}
	return code
}

type nextFire struct {
	Schedule string    `json:"schedule"`
	Local    time.Time `json:"local"`
	UTC      time.Time `json:"utc"`
	DSTGap   bool      `json:"dst_gap,omitempty"`
	Skip     bool      `json:"skip,omitempty"`
}

// cmdNext prints each schedule's next fire times:
// NAME<TAB>local RFC 3339<TAB>UTC RFC 3339.
func cmdNext(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("next", stderr)
	path := fs.String("config", "", "schedules `FILE`")
	n := fs.Int("n", 5, "fires per schedule")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *n < 1 {
		fmt.Fprintln(stderr, "scheduler next: -n must be at least 1")
		return exitUsage
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return exitUsage
	}
	now := time.Now()
	var out []nextFire
	for _, s := range cfg.Schedules {
		spec, err := firing.NewSpec(s.Cron, s.Location, s.DST)
		if err != nil {
			fmt.Fprintf(stderr, "%s: schedules: %s: %v\n", s.Source, s.Name, err)
			return exitUsage
		}
		for _, f := range spec.NextN(now, *n) {
			out = append(out, nextFire{Schedule: s.Name, Local: f.At.In(s.Location), UTC: f.At.UTC(), DSTGap: f.DSTGap, Skip: f.Skip})
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if out == nil {
			out = []nextFire{}
		}
		_ = enc.Encode(out)
		return exitOK
	}
	for _, f := range out {
		note := ""
		switch {
		case f.Skip:
			note = "\t(DST gap: skipped)"
		case f.DSTGap:
			note = "\t(DST gap: runs at the transition)"
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s%s\n", f.Schedule, f.Local.Format(time.RFC3339), f.UTC.Format(time.RFC3339), note)
	}
	return exitOK
}
