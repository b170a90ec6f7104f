package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sae-scheduler/sae-scheduler/internal/daemon"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/sae/emulator"
)

// demoSchedules is the demo's schedules file: one schedule per thing worth
// seeing, on crons of a few seconds.
var demoSchedules = template.Must(template.New("demo").Parse(`# Written by 'scheduler demo' into a temporary directory.
sae:
  region: cn-hangzhou
  endpoint: {{.Endpoint}}
  quota_per_minute: 60            # the emulated account is ours alone
  quota_burst: 30
defaults:
  timezone: Asia/Shanghai
  batch: {size: 2, pause: 2s}
  lock_wait: 1m
  batch_timeout: 1m
  window: 5m
schedules:
  - name: demo-web                 # a plain rolling restart, 2 instances at a time
    cron: "*/10 * * * * *"
    apps:
      - app_id: {{.Web}}
    batch: {size: 2, pause: 1s}
    labels: {team: web}
  - name: demo-api                 # a deploy holds the app's lock for a while: the run waits for it
    cron: "*/30 * * * * *"
    apps:
      - app_id: {{.API}}
    batch: {size: 50%, min_ready: 50%}
  - name: demo-worker              # every restart change order of this app fails: the run fails
    cron: "20 * * * * *"
    apps:
      - {namespace_id: "{{.Namespace}}", app_name: "demo-work*"}
  - name: demo-legacy              # never deployed: skipped, not failed
    cron: "30 * * * * *"
    apps:
      - {namespace_id: "{{.Namespace}}", app_name: "demo-*", exclude: ["demo-web", "demo-api", "demo-worker"]}
`))

// cmdDemo starts the embedded emulator with a few apps and runs the daemon
// on example schedules against it. It writes nothing outside a temporary
// directory and needs no cloud account.
func cmdDemo(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:9750", "HTTP `address` for /metrics and the API")
	runFor := fs.Duration("for", 0, "stop after this long (0: until Ctrl-C)")
	logFormat := fs.String("log-format", "text", "json or text (logs go to stderr)")
	verbose := fs.Bool("v", false, "log every step to stderr, not only warnings")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	log, err := newLogger(*logFormat, "", stderr)
	if err != nil {
		fmt.Fprintln(stderr, "scheduler demo:", err)
		return exitUsage
	}
	if !*verbose {
		log = quietLogger(*logFormat, stderr)
	}

	// The emulated apps restart in seconds, not the real 30-90 s.
	apps := emulator.DemoApps()
	for i := range apps {
		apps[i].RestartTime = time.Duration(2+i) * time.Second
		for j := range apps[i].Deploys {
			apps[i].Deploys[j].Duration = 45 * time.Second
		}
	}
	const ak, secret = "demo-access-key-id", "demo-access-key-secret"
	emu, err := emulator.New(emulator.Config{AccessKeys: map[string]string{ak: secret}, Apps: apps, Seed: 1})
	if err != nil {
		fmt.Fprintln(stderr, "scheduler demo: emulator:", err)
		return exitFailure
	}
	endpoint, err := emu.Start("127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, "scheduler demo: emulator:", err)
		return exitFailure
	}
	defer emu.Close()

	// The SDK's default credential chain reads these: the emulator's fake
	// account, and never the metadata service or a CLI profile.
	for k, v := range map[string]string{
		"ALIBABA_CLOUD_ACCESS_KEY_ID":         ak,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET":     secret,
		"ALIBABA_CLOUD_SECURITY_TOKEN":        "",
		"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
		"ALIBABA_CLOUD_CLI_PROFILE_DISABLED":  "true",
	} {
		os.Setenv(k, v)
	}

	dir, err := os.MkdirTemp("", "sae-scheduler-demo-")
	if err != nil {
		fmt.Fprintln(stderr, "scheduler demo:", err)
		return exitFailure
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "schedules.yaml")
	f, err := os.Create(cfgPath)
	if err == nil {
		err = demoSchedules.Execute(f, map[string]string{
			"Endpoint": endpoint, "Web": emulator.DemoAppWeb, "API": emulator.DemoAppAPI,
			"Namespace": emulator.DemoNamespace,
		})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "scheduler demo: writing the schedules:", err)
		return exitFailure
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	d, err := daemon.New(daemon.Options{
		ConfigPath:      cfgPath,
		Listen:          *listen,
		ShutdownTimeout: 30 * time.Second,
		Version:         version,
		APIToken:        os.Getenv("SCHEDULER_API_TOKEN"),
		Logger:          log,
		Registry:        prometheus.NewRegistry(),
		Observer:        daemon.Progress(stdout),
		StatePath:       filepath.Join(dir, "scheduler.db"),
		// Restarts take seconds here: look at change orders every second or two.
		Poller: jobs.AdaptivePoller{Initial: time.Second, Max: 5 * time.Second},
		Out: func(out jobs.RunOutcome) {
			daemon.WriteSummary(stdout, out)
		},
	})
	if err != nil {
		printConfigError(stderr, err)
		return exitFailure
	}
	if err := d.Start(); err != nil {
		fmt.Fprintln(stderr, "scheduler demo:", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, `sae-scheduler demo
  SAE emulator:  %s (apps: demo-web, demo-api, demo-worker, demo-legacy)
  schedules:     %s
  metrics:       http://%s/metrics
  schedules API: http://%s/api/v1/schedules
  run history:   http://%s/api/v1/runs (journal: %s)
Runs fire every few seconds; Ctrl-C stops the demo.

`, endpoint, cfgPath, d.Addr(), d.Addr(), d.Addr(), filepath.Join(dir, "scheduler.db"))
	if *runFor > 0 {
		go func() {
			time.Sleep(*runFor)
			sigs <- syscall.SIGTERM
		}()
	}
	return d.Run(sigs)
}
