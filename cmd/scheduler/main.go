// Command scheduler performs scheduled rolling restarts of Alibaba Cloud SAE
// application instances. See the README for the subcommands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	_ "time/tzdata" // schedules name IANA zones; never depend on the host's zoneinfo
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes of every subcommand.
const (
	exitOK      = 0 // success
	exitFailure = 1 // a runtime failure or a non-success outcome
	exitUsage   = 2 // a usage or configuration error
)

type command struct {
	name  string
	usage string
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"run", "run the daemon: fire every schedule, serve /metrics and the API", cmdRun},
		{"demo", "run the whole product against an embedded SAE emulator (no cloud account)", cmdDemo},
		{"validate", "check schedules files; print every error as FILE:LINE: field: message", cmdValidate},
		{"next", "print the next fire times of every schedule", cmdNext},
		{"plan", "print what a schedule's run would restart (read-only SAE calls)", cmdPlan},
		{"history", "list recent runs and skipped fires from the run journal (no SAE call)", cmdHistory},
		{"trigger", "run one schedule's rollout now, in the foreground (or through -daemon)", cmdTrigger},
		{"emulator", "run the SAE OpenAPI emulator", cmdEmulator},
		{"healthcheck", "probe a running daemon's /healthz (for container HEALTHCHECK)", cmdHealthcheck},
		{"version", "print the version", cmdVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if callsSAE[c.name] && sdkDebugOn(os.Getenv("DEBUG")) {
				fmt.Fprintln(stderr, "scheduler: DEBUG includes \"sdk\": the Alibaba Cloud SDK would print every request's headers, STS token included, to stdout; unset it")
				return exitUsage
			}
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "scheduler: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

// callsSAE names the commands that build an SAE client.
var callsSAE = map[string]bool{"run": true, "demo": true, "plan": true, "trigger": true}

// sdkDebugOn reports whether DEBUG switches on the SDK's request dump (the
// SDK reads it once at start-up, so it cannot be turned off later).
func sdkDebugOn(debug string) bool {
	for _, part := range strings.Split(debug, ",") {
		if part == "sdk" {
			return true
		}
	}
	return false
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: scheduler <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nRun 'scheduler <command> -h' for a command's flags.")
}

func cmdVersion(_ context.Context, _ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, version)
	return exitOK
}
