package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sae-scheduler/sae-scheduler/internal/daemon"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// cmdRun runs the daemon until SIGTERM/SIGINT (exit 0 after draining; a
// second signal exits at once with 1). SIGHUP reloads the schedules file.
// Exit 2: a usage or configuration error, or a state file that cannot be
// opened (corrupt, not a database); 1: the listener or the journal's
// recovery failed; 3: a SCHEDULER_FAILPOINT was reached (crash tests).
func cmdRun(_ context.Context, args []string, _, stderr io.Writer) int {
	fs := newFlagSet("run", stderr)
	path := fs.String("config", "", "schedules `FILE`")
	listen := fs.String("listen", ":9750", "HTTP `address` for /metrics, /healthz, /readyz and the API (port 0 picks a free port)")
	listenFile := fs.String("listen-file", "", "once listening, write the actual host:port to this `FILE` (for -listen with port 0)")
	shutdown := fs.Duration("shutdown-timeout", 5*time.Minute, "how long in-flight change orders are watched after SIGTERM")
	logFormat := fs.String("log-format", "", "json or text (default: json unless stderr is a terminal)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	pollInitial := fs.Duration("poll-initial", 0, "first look at a new change order (0: the engine's 30s); lower it against the emulator")
	statePath := fs.String("state", "", "the run journal's SQLite `FILE` (default: state.path of the config, ./scheduler.db)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	log, err := newLogger(*logFormat, *logLevel, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "scheduler run:", err)
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "scheduler run: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	case *path == "":
		fmt.Fprintln(stderr, "scheduler run: -config FILE is required")
		return exitUsage
	case *shutdown <= 0:
		fmt.Fprintln(stderr, "scheduler run: -shutdown-timeout must be positive")
		return exitUsage
	case *pollInitial < 0:
		fmt.Fprintln(stderr, "scheduler run: -poll-initial must not be negative")
		return exitUsage
	}
	fp, err := failpointFromEnv(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "scheduler run:", err)
		return exitUsage
	}
	if fp != nil {
		log.Warn("failpoint armed: the process will exit at it (crash tests only)", "failpoint", os.Getenv(failpointEnv))
	}
	// Registered before the daemon starts, so no signal is lost in between.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	var poller jobs.Poller
	if *pollInitial > 0 {
		poller = jobs.AdaptivePoller{Initial: *pollInitial, Min: min(*pollInitial, time.Second)}
	}
	d, err := daemon.New(daemon.Options{
		ConfigPath:      *path,
		Listen:          *listen,
		ShutdownTimeout: *shutdown,
		Version:         version,
		APIToken:        os.Getenv("SCHEDULER_API_TOKEN"),
		Logger:          log,
		Registry:        prometheus.NewRegistry(),
		Poller:          poller,
		StatePath:       *statePath,
		Failpoint:       fp,
	})
	if err != nil {
		printConfigError(stderr, err)
		return exitUsage
	}
	if err := d.Start(); err != nil {
		log.Error("start failed", "err", err)
		return exitFailure
	}
	if *listenFile != "" {
		if err := writeFileAtomic(*listenFile, d.Addr().String()+"\n"); err != nil {
			log.Error("writing -listen-file", "err", err)
		}
	}
	return d.Run(sigs)
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so a reader polling for path never sees it half written.
func writeFileAtomic(path, data string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// cmdHealthcheck probes a daemon's /healthz; exit 0 when it answers 200.
func cmdHealthcheck(_ context.Context, args []string, _, stderr io.Writer) int {
	fs := newFlagSet("healthcheck", stderr)
	url := fs.String("url", "http://127.0.0.1:9750/healthz", "the daemon's health `URL`")
	timeout := fs.Duration("timeout", 3*time.Second, "request timeout")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	c := &http.Client{Timeout: *timeout}
	resp, err := c.Get(*url)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return exitFailure
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(stderr, "healthcheck:", resp.Status)
		return exitFailure
	}
	return exitOK
}
