package emulator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
)

// Defaults of the `scheduler emulator` flags. The keys are the fake
// account's, not real credentials: the emulator is the one place where keys
// are given as flags.
const (
	DefaultListen          = "127.0.0.1:18080"
	DefaultAccessKeyID     = "emulator-ak"
	DefaultAccessKeySecret = "emulator-secret"
)

// RunCommand runs the `scheduler emulator` subcommand until ctx is done.
// It prints "listening on http://ADDR" once ready and, without -apps, the
// demo apps' IDs. It returns 0 on a clean stop, 2 on a usage error and 1
// when the apps file is invalid or the listener fails.
func RunCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", DefaultListen, "address to listen on (127.0.0.1:0 picks a port)")
	appsFile := fs.String("apps", "", "strict YAML apps file (`apps: [...]`); without it a demo world is seeded")
	akID := fs.String("access-key-id", DefaultAccessKeyID, "AccessKeyId of the fake account")
	akSecret := fs.String("access-key-secret", DefaultAccessKeySecret, "AccessKeySecret of the fake account")
	token := fs.String("security-token", "", "if set, the key is an STS key and requests must carry this x-acs-security-token")
	scale := fs.Float64("time-scale", 1, "emulated seconds per real second (>= 1)")
	codeIn := fs.String("error-code-in", "code", "where a business error's id goes: code (\"Code\":\"Application.X\") or errorcode (\"Code\":\"400\",\"ErrorCode\":\"Application.X\")")
	bizStatus := fs.String("business-status", "4xx", "HTTP status of business errors: 4xx (documented) or 200 (with Success:false)")
	replace := fs.Bool("replace-instance-ids", false, "restarts replace instances with new IDs (default: restart in place)")
	quota := fs.Int("quota-per-minute", 60, "calls per AccessKeyId per emulated minute (< 0: unlimited)")
	seed := fs.Int64("seed", 1, "seed for generated IDs")
	verbose := fs.Bool("v", false, "log every request to stderr")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: scheduler emulator [flags]\n\nRuns the SAE OpenAPI emulator.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "emulator: %s\n", msg)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case *akID == "" || *akSecret == "":
		return usage("-access-key-id and -access-key-secret must not be empty")
	case *scale < 1:
		return usage("-time-scale must be >= 1")
	case *codeIn != "code" && *codeIn != "errorcode":
		return usage("-error-code-in must be code or errorcode")
	case *bizStatus != "4xx" && *bizStatus != "200":
		return usage("-business-status must be 4xx or 200")
	case *quota == 0:
		return usage("-quota-per-minute must not be 0")
	}
	cfg := Config{Seed: *seed, QuotaPerMinute: *quota, ReplaceInstanceIDs: *replace}
	if *token != "" {
		cfg.STSTokens = map[string]STSKey{*akID: {Secret: *akSecret, Token: *token}}
	} else {
		cfg.AccessKeys = map[string]string{*akID: *akSecret}
	}
	if *codeIn == "errorcode" {
		cfg.ErrorCodeIn = CodeInErrorCode
	}
	if *bizStatus == "200" {
		cfg.BusinessErrorStatus = HTTP200
	}
	if *scale != 1 {
		cfg.Clock = clock.NewScaled(time.Now(), *scale)
	}
	if *verbose {
		cfg.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	}
	demo := *appsFile == ""
	if demo {
		cfg.Apps = DemoApps()
	} else {
		apps, err := LoadApps(*appsFile)
		if err != nil {
			fmt.Fprintf(stderr, "emulator: %v\n", err)
			return 1
		}
		cfg.Apps = apps
	}
	srv, err := New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "emulator: %v\n", err)
		return 1
	}
	base, err := srv.Start(*listen)
	if err != nil {
		fmt.Fprintf(stderr, "emulator: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "listening on %s\n", base)
	if demo {
		for _, a := range cfg.Apps {
			a = a.withDefaults(false)
			fmt.Fprintf(stdout, "app %s %s namespace=%s\n", a.AppID, a.AppName, a.NamespaceID)
		}
	}
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		fmt.Fprintf(stderr, "emulator: close: %v\n", err)
	}
	return 0
}
