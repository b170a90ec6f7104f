// Package config reads the schedules file: strict YAML decoding (unknown keys
// are errors), defaults applied field by field, then validation, with every
// problem reported as FILE:LINE: field.path: message.
//
// The file's lifecycle in the daemon is validate-then-swap: Load builds a
// complete, validated Config or returns every error it found; the caller
// swaps its running configuration only on success, so a bad reload never
// disturbs the schedules already firing.
//
// Credentials never appear in the file: the SAE client takes them from the
// SDK's default chain (ALIBABA_CLOUD_ACCESS_KEY_ID and friends, a RAM role),
// and Grafana's token from the environment variable named by grafana.token_env.
package config

import (
	"fmt"
	"os"
	"strings"
	"time"

	// Zones must load the same way on every host, including a scratch
	// container without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// Built-in values used when the file leaves a key out.
const (
	DefaultQuotaPerMinute = 30
	DefaultQuotaBurst     = 3
	DefaultStateDriver    = "sqlite"
	DefaultStatePath      = "./scheduler.db"
	DefaultRetention      = 720 * time.Hour
	// MaxQuotaPerMinute is SAE's per-account limit for all OpenAPI calls.
	MaxQuotaPerMinute = 60
)

// Config is a loaded, validated schedules file.
type Config struct {
	SAE       SAE
	State     State
	Grafana   *Grafana // nil when the file has no grafana block
	Schedules []jobs.Schedule
	Path      string // the file name given to Load or Parse
}

// SAE is the sae block: where and how fast to call SAE.
type SAE struct {
	Region string // default region of every schedule ("" when each schedule sets its own)
	// Endpoint overrides the SAE endpoint: "" (https://sae.<region>.aliyuncs.com)
	// or an absolute http(s)://host[:port] URL, e.g. the emulator's.
	Endpoint       string
	QuotaPerMinute int // calls per minute for the whole account, 1..60 (default 30)
	QuotaBurst     int // token-bucket burst, 1..QuotaPerMinute (default 3)
}

// State is the state block: the run journal.
type State struct {
	Driver    string        // "sqlite" (the only driver for now)
	Path      string        // the database file (default ./scheduler.db)
	Retention time.Duration // how long finished runs are kept (default 720h)
}

// Grafana is the optional grafana block: where run annotations go.
type Grafana struct {
	URL      string // Grafana's base URL
	TokenEnv string // the NAME of the environment variable holding the API token
}

// Schedule returns the schedule called name.
func (c *Config) Schedule(name string) (jobs.Schedule, bool) {
	for _, s := range c.Schedules {
		if s.Name == name {
			return s, true
		}
	}
	return jobs.Schedule{}, false
}

// Error is one problem in the schedules file.
type Error struct {
	File  string
	Line  int    // 1-based; the line of the offending key or value
	Field string // the field path, e.g. schedules[2].batch.size; "" for the whole file
	Msg   string
}

// Error formats e as "FILE:LINE: field.path: message" (without the field
// path when the problem concerns the whole file).
func (e Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
}

// Errors is every problem found in a file, in line order.
type Errors []Error

// Error joins the errors, one per line.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.As find a single Error too.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Load reads and parses the schedules file at path. It returns a wrapped
// fs error when the file cannot be read, and an Errors value listing every
// problem when its content is invalid.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a schedules file; name is used in error
// positions and in each schedule's Source. On any problem it returns a nil
// Config and an Errors value listing every problem found (not only the first).
func Parse(name string, data []byte) (*Config, error) {
	d := newDecoder(name)
	cfg := d.file(data)
	if len(d.errs) > 0 {
		d.sortErrors()
		return nil, d.errs
	}
	cfg.Path = name
	return cfg, nil
}
