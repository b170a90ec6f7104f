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
)

// cmdRun runs the daemon until SIGTERM/SIGINT (exit 0 after draining; a
// second signal exits at once with 1). SIGHUP reloads the schedules file.
func cmdRun(_ context.Context, args []string, _, stderr io.Writer) int {
	fs := newFlagSet("run", stderr)
	path := fs.String("config", "", "schedules `FILE`")
	listen := fs.String("listen", ":9750", "HTTP `address` for /metrics, /healthz, /readyz and the API")
	shutdown := fs.Duration("shutdown-timeout", 5*time.Minute, "how long in-flight change orders are watched after SIGTERM")
	logFormat := fs.String("log-format", "", "json or text (default: json unless stderr is a terminal)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	log, err := newLogger(*logFormat, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "scheduler run:", err)
		return exitUsage
	}
	if *path == "" {
		fmt.Fprintln(stderr, "scheduler run: -config FILE is required")
		return exitUsage
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	d, err := daemon.New(daemon.Options{
		ConfigPath:      *path,
		Listen:          *listen,
		ShutdownTimeout: *shutdown,
		Version:         version,
		APIToken:        os.Getenv("SCHEDULER_API_TOKEN"),
		Logger:          log,
		Registry:        prometheus.NewRegistry(),
	})
	if err != nil {
		printConfigError(stderr, err)
		return exitUsage
	}
	if err := d.Start(); err != nil {
		log.Error("start failed", "err", err)
		return exitFailure
	}
	return d.Run(sigs)
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
