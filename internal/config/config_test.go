package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

const credentialsText = "credentials do not belong in the file: use the SDK's default chain " +
	"(ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET in the environment, or a RAM role)"

func TestLoadInvalidFiles(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{name: "an empty file is an error", file: "empty",
			want: []string{"testdata/invalid-empty.yaml:1: file is empty"}},
		{name: "an unknown key is named with its line and a suggestion", file: "unknown-key",
			want: []string{`testdata/invalid-unknown-key.yaml:8: schedules[0].windw: unknown key (did you mean "window"?)`}},
		{name: "an unknown top-level key", file: "unknown-top-key",
			want: []string{`testdata/invalid-unknown-top-key.yaml:8: sae2: unknown key (did you mean "sae"?)`}},
		{name: "a string where an integer belongs", file: "wrong-type",
			want: []string{`testdata/invalid-wrong-type.yaml:8: schedules[0].app_concurrency: must be an integer, got a string "two"`}},
		{name: "a string where a boolean belongs", file: "suspend-type",
			want: []string{`testdata/invalid-suspend-type.yaml:8: schedules[0].suspend: must be true or false, got "yes"`}},
		{name: "a cron field out of range", file: "bad-cron",
			want: []string{`testdata/invalid-bad-cron.yaml:5: schedules[0].cron: bad cron expression "61 * * * *": end of range (61) above maximum (59): 61`}},
		{name: "a CRON_TZ prefix points to timezone", file: "tz-prefix",
			want: []string{"testdata/invalid-tz-prefix.yaml:5: schedules[0].cron: a CRON_TZ=/TZ= prefix is not allowed: set the schedule's timezone instead"}},
		{name: "a cron that never fires (30 February)", file: "never-fires",
			want: []string{"testdata/invalid-never-fires.yaml:5: schedules[0].cron: never fires: no time matches it within 5 years"}},
		{name: "an unknown time zone", file: "unknown-timezone",
			want: []string{`testdata/invalid-unknown-timezone.yaml:8: schedules[0].timezone: unknown time zone "Mars/Olympus" (want an IANA name like Asia/Shanghai)`}},
		{name: "the host's zone is refused", file: "local-timezone",
			want: []string{"testdata/invalid-local-timezone.yaml:8: schedules[0].timezone: must be an IANA zone name like Asia/Shanghai or UTC (the host's zone is never used)"}},
		{name: "a duplicate schedule name points to the first", file: "duplicate-name",
			want: []string{`testdata/invalid-duplicate-name.yaml:8: schedules[1].name: duplicate name "nightly" (first at line 4)`}},
		{name: "a name that cannot be a label value or URL segment", file: "bad-name",
			want: []string{`testdata/invalid-bad-name.yaml:4: schedules[0].name: must match ^[a-z0-9][a-z0-9._-]{0,62}$ (it becomes a metric label and a URL segment), got "Nightly Web"`}},
		{name: "batch size 0", file: "size-zero",
			want: []string{"testdata/invalid-size-zero.yaml:9: schedules[0].batch.size: must be at least 1"}},
		{name: "batch size over 100%", file: "size-over-100",
			want: []string{"testdata/invalid-size-over-100.yaml:8: schedules[0].batch.size: must be at most 100%"}},
		{name: "a negative batch size", file: "size-negative",
			want: []string{"testdata/invalid-size-negative.yaml:8: schedules[0].batch.size: must be at least 1"}},
		{name: "a batch size that is neither count nor percentage", file: "size-not-quantity",
			want: []string{`testdata/invalid-size-not-quantity.yaml:8: schedules[0].batch.size: must be a count or a percentage like "25%", got "a quarter"`}},
		{name: "a negative min_ready", file: "min-ready-negative",
			want: []string{"testdata/invalid-min-ready-negative.yaml:8: schedules[0].batch.min_ready: must not be negative"}},
		{name: "a negative duration", file: "negative-duration",
			want: []string{"testdata/invalid-negative-duration.yaml:8: schedules[0].batch.pause: must not be negative"}},
		{name: "a duration without a unit", file: "bad-duration",
			want: []string{`testdata/invalid-bad-duration.yaml:8: schedules[0].lock_wait: must be a duration like "90s" or "2h", got "30"`}},
		{name: "a zero window", file: "zero-window",
			want: []string{"testdata/invalid-zero-window.yaml:8: schedules[0].window: must be greater than 0"}},
		{name: "a zero batch_timeout", file: "zero-batch-timeout",
			want: []string{"testdata/invalid-zero-batch-timeout.yaml:8: schedules[0].batch_timeout: must be greater than 0"}},
		{name: "an empty apps list", file: "no-apps",
			want: []string{"testdata/invalid-no-apps.yaml:6: schedules[0].apps: must list at least one app"}},
		{name: "no apps key", file: "apps-missing",
			want: []string{"testdata/invalid-apps-missing.yaml:4: schedules[0].apps: must list at least one app"}},
		{name: "an app entry with both app_id and a namespace", file: "app-both",
			want: []string{"testdata/invalid-app-both.yaml:7: schedules[0].apps[0]: must have either app_id or namespace_id + app_name, not both"}},
		{name: "an app entry with neither", file: "app-neither",
			want: []string{"testdata/invalid-app-neither.yaml:7: schedules[0].apps[0]: must have either app_id or namespace_id + app_name"}},
		{name: "a namespace without app_name", file: "app-namespace-only",
			want: []string{`testdata/invalid-app-namespace-only.yaml:7: schedules[0].apps[0].app_name: is required with namespace_id (a name or a glob like "web-*")`}},
		{name: "exclude next to app_id", file: "exclude-with-app-id",
			want: []string{"testdata/invalid-exclude-with-app-id.yaml:7: schedules[0].apps[0].exclude: applies only to namespace_id + app_name"}},
		{name: "the same app_id twice in a schedule", file: "duplicate-app-id",
			want: []string{`testdata/invalid-duplicate-app-id.yaml:8: schedules[0].apps[1].app_id: duplicate app_id "app-1" (first at line 7)`}},
		{name: "a malformed glob", file: "bad-glob",
			want: []string{`testdata/invalid-bad-glob.yaml:7: schedules[0].apps[0].app_name: bad glob "web-[": syntax error in pattern`}},
		{name: "credentials get their own message", file: "credentials",
			want: []string{
				"testdata/invalid-credentials.yaml:3: sae.access_key_id: " + credentialsText,
				"testdata/invalid-credentials.yaml:4: sae.access_key_secret: " + credentialsText,
			}},
		{name: "a grafana token points to token_env", file: "grafana-token",
			want: []string{
				"testdata/invalid-grafana-token.yaml:8: grafana.token_env: is required when grafana is set",
				"testdata/invalid-grafana-token.yaml:10: grafana.token: credentials do not belong in the file: put the token in an environment variable and name it in grafana.token_env",
			}},
		{name: "an endpoint with a path and query", file: "bad-endpoint",
			want: []string{"testdata/invalid-bad-endpoint.yaml:3: sae.endpoint: must be empty or an absolute http(s)://host[:port] URL without path, query or user info"}},
		{name: "an endpoint without a scheme", file: "endpoint-no-scheme",
			want: []string{"testdata/invalid-endpoint-no-scheme.yaml:3: sae.endpoint: must be empty or an absolute http(s)://host[:port] URL without path, query or user info"}},
		{name: "jitter as long as the window", file: "jitter-window",
			want: []string{"testdata/invalid-jitter-window.yaml:9: schedules[0].jitter: must be shorter than window (10m)"}},
		{name: "a label name Prometheus refuses", file: "bad-label-name",
			want: []string{`testdata/invalid-bad-label-name.yaml:10: schedules[0].labels: invalid label name "on-call": must match [a-zA-Z_][a-zA-Z0-9_]*`}},
		{name: "a label named schedule", file: "reserved-label",
			want: []string{`testdata/invalid-reserved-label.yaml:9: schedules[0].labels: invalid label name "schedule": the daemon sets it`}},
		{name: "two YAML documents", file: "multi-doc",
			want: []string{"testdata/invalid-multi-doc.yaml:8: only one YAML document is allowed"}},
		{name: "a YAML syntax error keeps its line", file: "syntax",
			want: []string{"testdata/invalid-syntax.yaml:8: invalid YAML: did not find expected ',' or ']'"}},
		{name: "a list at the top", file: "not-mapping",
			want: []string{"testdata/invalid-not-mapping.yaml:1: the file must be a mapping with the keys sae, defaults, schedules, state, grafana, got a list"}},
		{name: "the postgres driver is not there yet", file: "postgres",
			want: []string{`testdata/invalid-postgres.yaml:9: state.driver: driver "postgres" is not supported yet: use sqlite`}},
		{name: "a quota above SAE's limit", file: "quota-range",
			want: []string{"testdata/invalid-quota-range.yaml:3: sae.quota_per_minute: must be between 1 and 60 (SAE allows 60 calls per minute per account)"}},
		{name: "a burst above the quota", file: "burst-over-quota",
			want: []string{"testdata/invalid-burst-over-quota.yaml:4: sae.quota_burst: must not exceed quota_per_minute (10)"}},
		{name: "no region anywhere", file: "region-missing",
			want: []string{"testdata/invalid-region-missing.yaml:2: schedules[0].region: is required when sae.region is not set"}},
		{name: "region in defaults", file: "defaults-region",
			want: []string{"testdata/invalid-defaults-region.yaml:4: defaults.region: region belongs in sae.region (or in a schedule)"}},
		{name: "an unknown on_stuck", file: "on-stuck",
			want: []string{`testdata/invalid-on-stuck.yaml:8: schedules[0].on_stuck: must be one of abort, leave, got "retry"`}},
		{name: "an unknown dst policy", file: "dst",
			want: []string{`testdata/invalid-dst.yaml:8: schedules[0].dst: must be one of run_at_transition, skip, got "ignore"`}},
		{name: "app_concurrency 0", file: "app-concurrency-zero",
			want: []string{"testdata/invalid-app-concurrency-zero.yaml:8: schedules[0].app_concurrency: must be at least 1"}},
		{name: "a negative failure budget", file: "max-failed-negative",
			want: []string{"testdata/invalid-max-failed-negative.yaml:8: schedules[0].max_failed_batches: must not be negative"}},
		{name: "a key given twice", file: "duplicate-key",
			want: []string{"testdata/invalid-duplicate-key.yaml:9: schedules[0].window: duplicate key (first at line 8)"}},
		{name: "no schedules key", file: "schedules-missing",
			want: []string{"testdata/invalid-schedules-missing.yaml:1: schedules: is required: list at least one schedule"}},
		{name: "an alias inside its own anchor", file: "alias-cycle",
			want: []string{"testdata/invalid-alias-cycle.yaml:6: alias *s refers to a node that contains it"}},
		{name: "aliases that expand without bound", file: "alias-bomb",
			want: []string{"testdata/invalid-alias-bomb.yaml:7: aliases expand to more than 5000000 nodes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "testdata/invalid-" + tt.file + ".yaml"
			cfg, err := Load(path)
			if cfg != nil {
				t.Errorf("Load(%s) config = %+v, want nil", path, cfg)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load(%s) error = %v (%T), want Errors", path, err, err)
			}
			if got := lines(errs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Load(%s) errors =\n%s\nwant\n%s", path, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func lines(errs Errors) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// TestEveryInvalidFileFails guards against an invalid-*.yaml file that
// loads cleanly (and so tests nothing).
func TestEveryInvalidFileFails(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, err := Load(f); err == nil {
			t.Errorf("Load(%s) error = nil, want an error", f)
		}
	}
	if len(files) < 50 {
		t.Errorf("len(invalid files) = %d, want at least 50", len(files))
	}
}

func TestLoadReportsEveryError(t *testing.T) {
	const f = "testdata/invalid-many.yaml"
	want := []string{
		f + ":3: sae.quota_per_minute: must be between 1 and 60 (SAE allows 60 calls per minute per account)",
		f + ":5: defaults.window: must be greater than 0",
		f + ":6: defaults.batch.size: must be at most 100%",
		f + `:13: schedules[1].name: must match ^[a-z0-9][a-z0-9._-]{0,62}$ (it becomes a metric label and a URL segment), got "Second"`,
		f + ":14: schedules[1].cron: a CRON_TZ=/TZ= prefix is not allowed: set the schedule's timezone instead",
		f + ":15: schedules[1].apps: must list at least one app",
		f + `:16: schedules[2].name: duplicate name "first" (first at line 8)`,
		f + ":17: schedules[2].cron: never fires: no time matches it within 5 years",
		f + `:18: schedules[2].timezone: unknown time zone "Nowhere/City" (want an IANA name like Asia/Shanghai)`,
		f + `:20: schedules[2].apps[0].app_name: bad glob "[x": syntax error in pattern`,
		f + `:21: schedules[2].labels: invalid label name "1bad": must match [a-zA-Z_][a-zA-Z0-9_]*`,
		f + ":22: schedules[2].secret_key: " + credentialsText,
	}
	_, err := Load(f)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load(%s) error = %v, want Errors", f, err)
	}
	if got := lines(errs); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(%s) errors =\n%s\nwant\n%s", f, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, wantJoined := err.Error(), strings.Join(want, "\n"); got != wantJoined {
		t.Errorf("Errors.Error() = %q, want one error per line %q", got, wantJoined)
	}
}

func TestSecretsAreNeverEchoed(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		secret string
	}{
		{name: "access keys in sae", file: "testdata/invalid-credentials.yaml", secret: "s3cr3tVALUE"},
		{name: "access key id in sae", file: "testdata/invalid-credentials.yaml", secret: "LTAI5t"},
		{name: "a grafana token", file: "testdata/invalid-grafana-token.yaml", secret: "s3cr3tVALUE"},
		{name: "the many-errors file", file: "testdata/invalid-many.yaml", secret: "hunter2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.file)
			if err == nil {
				t.Fatalf("Load(%s) error = nil, want an error", tt.file)
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Errorf("Load(%s) error = %q, must not contain the secret %q", tt.file, err, tt.secret)
			}
		})
	}
}

func TestParseInlineErrors(t *testing.T) {
	const head = "sae:\n  region: cn-hangzhou\nschedules:\n  - name: n\n    cron: \"0 3 * * *\"\n    apps: [{app_id: a}]\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "an invalid default is reported once, not per inheriting schedule",
			yaml: "defaults:\n  window: 0s\n" + head + "    jitter: 5m\n  - name: m\n    cron: \"0 4 * * *\"\n    apps: [{app_id: a}]\n",
			want: []string{"f.yaml:2: defaults.window: must be greater than 0"},
		},
		{
			name: "a bad sae.region does not make every schedule miss its region",
			yaml: "sae:\n  region: Hangzhou!\nschedules:\n  - name: n\n    cron: \"0 3 * * *\"\n    apps: [{app_id: a}]\n",
			want: []string{`f.yaml:2: sae.region: must be an SAE region ID like cn-hangzhou, got "Hangzhou!"`},
		},
		{
			name: "a defaults jitter as long as the defaults window is reported on defaults",
			yaml: "defaults:\n  window: 10m\n  jitter: 10m\n" + head,
			want: []string{"f.yaml:3: defaults.jitter: must be shorter than window (10m)"},
		},
		{
			name: "a schedule shrinking the window below the inherited jitter is told on its window",
			yaml: "defaults:\n  jitter: 30m\n" + head + "    window: 20m\n",
			want: []string{"f.yaml:9: schedules[0].window: must be longer than jitter (30m)"},
		},
		{
			name: "jitter against the built-in window",
			yaml: head + "    jitter: 2h\n",
			want: []string{"f.yaml:7: schedules[0].jitter: must be shorter than window (2h)"},
		},
		{
			name: "a null document is empty",
			yaml: "---\n~\n",
			want: []string{"f.yaml:2: file is empty"},
		},
		{
			name: "a tab in indentation",
			yaml: "sae:\n\tregion: x\n",
			want: []string{"f.yaml:2: invalid YAML: found character that cannot start any token"},
		},
		{
			name: "a schedule that is not a mapping",
			yaml: "sae: {region: cn-hangzhou}\nschedules:\n  - nightly\n",
			want: []string{"f.yaml:3: schedules[0]: must be a mapping, got a string"},
		},
		{
			name: "an apps entry that is a bare ID",
			yaml: "sae: {region: cn-hangzhou}\nschedules:\n  - {name: n, cron: \"@daily\", apps: [app-1]}\n",
			want: []string{"f.yaml:3: schedules[0].apps[0]: must have either app_id or namespace_id + app_name, got a string"},
		},
		{
			name: "an endpoint with user info is refused without echoing it",
			yaml: "sae: {region: cn-hangzhou, endpoint: \"https://user:pa55@sae.example.com\"}\nschedules:\n  - {name: n, cron: \"@daily\", apps: [{app_id: a}]}\n",
			want: []string{"f.yaml:1: sae.endpoint: must be empty or an absolute http(s)://host[:port] URL without path, query or user info"},
		},
		{
			name: "a token pasted into token_env is not echoed",
			yaml: "grafana: {url: \"http://g:3000\", token_env: \"glsa_abc.def\"}\n" + head,
			want: []string{"f.yaml:1: grafana.token_env: must be the name of an environment variable (like GRAFANA_TOKEN), not the token"},
		},
		{
			name: "a credential as a label name",
			yaml: head + "    labels: {access_key_id: x}\n",
			want: []string{"f.yaml:7: schedules[0].labels.access_key_id: " + credentialsText},
		},
		{
			name: "a policy key misplaced outside batch",
			yaml: head + "    size: 2\n",
			want: []string{"f.yaml:7: schedules[0].size: size belongs under batch (batch: {size: ...})"},
		},
		{
			name: "a far-off unknown key lists the known ones",
			yaml: "sae:\n  region: cn-hangzhou\n  colour: blue\n" + head[len("sae:\n  region: cn-hangzhou\n"):],
			want: []string{"f.yaml:3: sae.colour: unknown key (known keys: region, endpoint, quota_per_minute, quota_burst)"},
		},
		{
			name: "min_ready over 100%",
			yaml: head + "    batch: {min_ready: 101%}\n",
			want: []string{"f.yaml:7: schedules[0].batch.min_ready: must be at most 100%"},
		},
		{
			name: "a mapping where a duration belongs",
			yaml: head + "    window: {hours: 2}\n",
			want: []string{`f.yaml:7: schedules[0].window: must be a duration like "90s" or "2h", got a mapping`},
		},
		{
			name: "zero retention",
			yaml: head + "state: {retention: 0s}\n",
			want: []string{"f.yaml:7: state.retention: must be greater than 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.yaml))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse() error = %v, want Errors", err)
			}
			if got := lines(errs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse() errors =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestInheritance(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	builtin := jobs.DefaultPolicy()
	const head = "sae: {region: cn-hangzhou}\n"
	const sched = "schedules:\n  - name: n\n    cron: \"0 3 * * *\"\n    apps: [{app_id: a}]\n"
	tests := []struct {
		name string
		yaml string
		want func(s *jobs.Schedule) // edits the built-in expectation
	}{
		{
			name: "without defaults every value is built in and the zone is UTC",
			yaml: head + sched,
			want: func(s *jobs.Schedule) {},
		},
		{
			name: "a schedule's batch size keeps the default pause",
			yaml: head + "defaults:\n  batch: {size: 10%, pause: 2m}\n" + sched + "    batch: {size: 2}\n",
			want: func(s *jobs.Schedule) {
				s.Policy.BatchSize = jobs.Quantity{Value: 2}
				s.Policy.Pause = 2 * time.Minute
			},
		},
		{
			name: "a schedule's pause keeps the default size and min_ready",
			yaml: head + "defaults:\n  batch: {size: 3, min_ready: 50%}\n" + sched + "    batch: {pause: 0s}\n",
			want: func(s *jobs.Schedule) {
				s.Policy.BatchSize = jobs.Quantity{Value: 3}
				s.Policy.MinReady = jobs.Quantity{Value: 50, Percent: true}
				s.Policy.Pause = 0
			},
		},
		{
			name: "defaults' timezone applies; starting_deadline follows the schedule's own window",
			yaml: head + "defaults:\n  timezone: Asia/Shanghai\n  window: 3h\n" + sched + "    window: 1h\n",
			want: func(s *jobs.Schedule) {
				s.Location = shanghai
				s.Policy.Window = time.Hour
				s.StartingDeadline = time.Hour
			},
		},
		{
			name: "starting_deadline from defaults wins over the window",
			yaml: head + "defaults:\n  starting_deadline: 5m\n" + sched,
			want: func(s *jobs.Schedule) { s.StartingDeadline = 5 * time.Minute },
		},
		{
			name: "every scalar policy key inherits from defaults",
			yaml: head + "defaults:\n  lock_wait: 0\n  batch_timeout: 5m\n  max_failed_batches: 2\n  app_concurrency: 4\n" +
				"  max_failed_apps: 3\n  min_age: 1h\n  on_stuck: leave\n  dst: skip\n  jitter: 10s\n" + sched,
			want: func(s *jobs.Schedule) {
				s.Policy.LockWait = 0
				s.Policy.BatchTimeout = 5 * time.Minute
				s.Policy.MaxFailedBatches = 2
				s.Policy.AppConcurrency = 4
				s.Policy.MaxFailedApps = 3
				s.Policy.MinAge = time.Hour
				s.Policy.OnStuck = jobs.StuckLeave
				s.DST = jobs.DSTSkip
				s.Jitter = 10 * time.Second
			},
		},
		{
			name: "a schedule overrides a default with the zero value",
			yaml: head + "defaults:\n  lock_wait: 10m\n  timezone: Asia/Shanghai\n" + sched + "    lock_wait: 0s\n    timezone: UTC\n",
			want: func(s *jobs.Schedule) { s.Policy.LockWait = 0 },
		},
		{
			name: "a schedule's region overrides sae.region",
			yaml: head + sched + "    region: cn-beijing\n",
			want: func(s *jobs.Schedule) { s.Region = "cn-beijing" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("f.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			want := jobs.Schedule{
				Name: "n", Cron: "0 3 * * *", Location: time.UTC, Region: "cn-hangzhou",
				Apps: []jobs.AppSelector{{AppID: "a"}}, Policy: builtin, DST: jobs.DSTRunAtTransition,
				StartingDeadline: builtin.Window,
			}
			tt.want(&want)
			want.Source = cfg.Schedules[0].Source
			if got := cfg.Schedules[0]; !reflect.DeepEqual(got, want) {
				t.Errorf("Parse() schedule =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestLoadValidMinimal(t *testing.T) {
	cfg, err := Load("testdata/valid-minimal.yaml")
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	wantSAE := SAE{Region: "cn-hangzhou", QuotaPerMinute: 30, QuotaBurst: 3}
	if cfg.SAE != wantSAE {
		t.Errorf("SAE = %+v, want %+v", cfg.SAE, wantSAE)
	}
	wantState := State{Driver: "sqlite", Path: "./scheduler.db", Retention: 720 * time.Hour}
	if cfg.State != wantState {
		t.Errorf("State = %+v, want %+v", cfg.State, wantState)
	}
	if cfg.Grafana != nil {
		t.Errorf("Grafana = %+v, want nil", cfg.Grafana)
	}
	if cfg.Path != "testdata/valid-minimal.yaml" {
		t.Errorf("Path = %q, want testdata/valid-minimal.yaml", cfg.Path)
	}
	if len(cfg.Schedules) != 1 {
		t.Fatalf("len(Schedules) = %d, want 1", len(cfg.Schedules))
	}
	s := cfg.Schedules[0]
	if s.Source != "testdata/valid-minimal.yaml:5" {
		t.Errorf("Source = %q, want testdata/valid-minimal.yaml:5", s.Source)
	}
	if s.Location != time.UTC {
		t.Errorf("Location = %v, want UTC", s.Location)
	}
	if !reflect.DeepEqual(s.Policy, jobs.DefaultPolicy()) {
		t.Errorf("Policy = %+v, want %+v", s.Policy, jobs.DefaultPolicy())
	}
}

func TestLoadValidFull(t *testing.T) {
	cfg, err := Load("testdata/valid-full.yaml")
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	wantSAE := SAE{Region: "cn-hangzhou", Endpoint: "http://127.0.0.1:18080", QuotaPerMinute: 60, QuotaBurst: 60}
	if cfg.SAE != wantSAE {
		t.Errorf("SAE = %+v, want %+v", cfg.SAE, wantSAE)
	}
	wantState := State{Driver: "sqlite", Path: "/var/lib/scheduler/state.db", Retention: 168 * time.Hour}
	if cfg.State != wantState {
		t.Errorf("State = %+v, want %+v", cfg.State, wantState)
	}
	wantGrafana := &Grafana{URL: "http://127.0.0.1:3000/grafana", TokenEnv: "GRAFANA_TOKEN"}
	if !reflect.DeepEqual(cfg.Grafana, wantGrafana) {
		t.Errorf("Grafana = %+v, want %+v", cfg.Grafana, wantGrafana)
	}
	if len(cfg.Schedules) != 2 {
		t.Fatalf("len(Schedules) = %d, want 2", len(cfg.Schedules))
	}
	first, second := cfg.Schedules[0], cfg.Schedules[1]
	wantPolicy := jobs.Policy{
		BatchSize: jobs.Quantity{Value: 1}, MinReady: jobs.Quantity{Value: 100, Percent: true},
		BatchTimeout: 5 * time.Minute, Window: time.Hour, MaxFailedBatches: 2, AppConcurrency: 3,
		MaxFailedApps: 1, MinAge: 6 * time.Hour, OnStuck: jobs.StuckLeave,
	}
	if !reflect.DeepEqual(first.Policy, wantPolicy) {
		t.Errorf("first.Policy = %+v, want %+v", first.Policy, wantPolicy)
	}
	if first.Location.String() != "Europe/Berlin" || first.Region != "cn-shanghai" || first.DST != jobs.DSTSkip ||
		first.Jitter != time.Minute || first.StartingDeadline != 10*time.Minute {
		t.Errorf("first = %+v, want Europe/Berlin, cn-shanghai, dst skip, jitter 1m, starting_deadline 10m", first)
	}
	wantLabels := map[string]string{"team": "web", "severity": "1"}
	if !reflect.DeepEqual(first.Labels, wantLabels) {
		t.Errorf("first.Labels = %v, want %v", first.Labels, wantLabels)
	}
	wantApps := []jobs.AppSelector{
		{AppID: "1daa7236-3844-4f36-b39a-605b0cc0xxxx"},
		{NamespaceID: "cn-hangzhou:prod", AppName: "api-*", Exclude: []string{"ops-*", "scheduler"}},
	}
	if !reflect.DeepEqual(second.Apps, wantApps) {
		t.Errorf("second.Apps (merged from an anchor) = %+v, want %+v", second.Apps, wantApps)
	}
	if second.Name != "every.10m_interval" || second.Location != time.UTC || second.Policy.BatchSize.String() != "50%" {
		t.Errorf("second = %+v, want every.10m_interval, UTC, size 50%%", second)
	}
}

func TestLoadExampleFile(t *testing.T) {
	const path = "../../schedules.example.yaml"
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s) error = %v", path, err)
	}
	var names []string
	for _, s := range cfg.Schedules {
		names = append(names, s.Name)
	}
	if want := []string{"nightly-web", "weekly-batch-jobs", "paused-legacy"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("schedule names = %v, want %v", names, want)
	}
	web, weekly, paused := cfg.Schedules[0], cfg.Schedules[1], cfg.Schedules[2]
	if web.Policy.BatchSize != (jobs.Quantity{Value: 2}) || web.Policy.Pause != 30*time.Second ||
		web.Policy.MinReady != (jobs.Quantity{Value: 75, Percent: true}) {
		t.Errorf("nightly-web batch = %+v, want size 2, pause 30s (inherited), min_ready 75%%", web.Policy)
	}
	if web.Location.String() != "Asia/Shanghai" || web.Region != "cn-hangzhou" || len(web.Apps) != 2 {
		t.Errorf("nightly-web = %+v, want Asia/Shanghai, cn-hangzhou, 2 apps", web)
	}
	if weekly.Location.String() != "America/New_York" || weekly.Region != "cn-shanghai" || weekly.DST != jobs.DSTSkip ||
		weekly.Policy.LockWait != 0 || weekly.StartingDeadline != time.Hour || weekly.Jitter != 5*time.Minute {
		t.Errorf("weekly-batch-jobs = %+v, want its overrides", weekly)
	}
	if !paused.Suspend || web.Suspend {
		t.Errorf("suspend = %v/%v, want paused-legacy only", web.Suspend, paused.Suspend)
	}
	if cfg.SAE.Endpoint != "" || cfg.SAE.QuotaPerMinute != 30 || cfg.Grafana != nil {
		t.Errorf("SAE = %+v, Grafana = %+v, want the real endpoint, quota 30, no grafana", cfg.SAE, cfg.Grafana)
	}
}

// TestExampleDocumentsEveryKey makes sure a key added to the decoder is
// documented in the example file (as a key or in a comment).
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../schedules.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	var all []string
	for _, keys := range [][]string{topKeys, saeKeys, stateKeys, grafanaKeys, scheduleKeys, batchKeys, appKeys} {
		all = append(all, keys...)
	}
	for _, k := range all {
		if !strings.Contains(text, k+":") {
			t.Errorf("schedules.example.yaml does not document %q", k)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load() error = %v, want fs.ErrNotExist", err)
	}
	var errs Errors
	if errors.As(err, &errs) {
		t.Errorf("Load() error is Errors %v, want a read error", errs)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "with a field path", err: Error{File: "a.yaml", Line: 3, Field: "schedules[0].cron", Msg: "bad"},
			want: "a.yaml:3: schedules[0].cron: bad"},
		{name: "about the whole file", err: Error{File: "a.yaml", Line: 1, Msg: "file is empty"},
			want: "a.yaml:1: file is empty"},
		{name: "several, one per line", err: Errors{{File: "a", Line: 1, Msg: "x"}, {File: "a", Line: 2, Field: "f", Msg: "y"}},
			want: "a:1: x\na:2: f: y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorsAsSingleError(t *testing.T) {
	_, err := Load("testdata/invalid-size-zero.yaml")
	var e Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(%v, *Error) = false, want true", err)
	}
	want := Error{File: "testdata/invalid-size-zero.yaml", Line: 9, Field: "schedules[0].batch.size", Msg: "must be at least 1"}
	if e != want {
		t.Errorf("Error = %+v, want %+v", e, want)
	}
}

func TestConfigSchedule(t *testing.T) {
	cfg, err := Load("../../schedules.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := cfg.Schedule("paused-legacy"); !ok || s.Name != "paused-legacy" {
		t.Errorf("Schedule(paused-legacy) = %v, %v; want it", s.Name, ok)
	}
	if _, ok := cfg.Schedule("nope"); ok {
		t.Errorf("Schedule(nope) ok = true, want false")
	}
}

// FuzzParse checks that no input panics and that a failure always carries
// positioned errors.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data)
		if err == nil {
			if cfg == nil || len(cfg.Schedules) == 0 {
				t.Fatalf("Parse() = %v, nil; want schedules", cfg)
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("Parse() error = %v, want a non-empty Errors", err)
		}
	})
}
