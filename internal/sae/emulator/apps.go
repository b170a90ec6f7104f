package emulator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultGroupName is the group every app has unless AppSpec.Groups is given.
const DefaultGroupName = "_DEFAULT_GROUP"

// AppSpec describes one emulated application. It is also one entry of the
// apps file (`apps: [...]`, snake_case keys, unknown keys are errors).
type AppSpec struct {
	AppID       string `yaml:"app_id"`
	AppName     string `yaml:"app_name"`     // default: AppID
	NamespaceID string `yaml:"namespace_id"` // default: Region + ":default"
	Region      string `yaml:"region"`       // default: cn-hangzhou
	// Instances is the number of instances; with Groups it must be 0 or their sum.
	Instances int `yaml:"instances"`
	// RestartTime is how long one batch of a restart change order runs (default 30s).
	RestartTime time.Duration `yaml:"restart_time"`
	// RestartJitter varies each restart change order's batch time uniformly
	// within ±RestartJitter × RestartTime (0..0.9; default 0: every restart
	// takes exactly RestartTime). Draws come from Config.Seed.
	RestartJitter float64 `yaml:"restart_jitter"`
	// Groups default to one _DEFAULT_GROUP holding every instance.
	Groups []GroupSpec `yaml:"groups"`
	// Stopped: CurrentStatus STOPPED, no instances; restarts answer Application.InvalidStatus.
	Stopped bool `yaml:"stopped"`
	// NotDeployed: CurrentStatus UNKNOWN, no instances; restarts answer Application.NotDeployYet.
	NotDeployed bool `yaml:"not_deployed"`
	// ReplaceInstanceIDs overrides Config.ReplaceInstanceIDs for this app.
	ReplaceInstanceIDs *bool `yaml:"replace_instance_ids"`
	// Deploys are someone else's change orders holding the app's lock.
	Deploys []ForeignChangeOrder `yaml:"deploys"`
	// Faults are injected for this app (their AppID defaults to AppID).
	Faults []Fault `yaml:"faults"`
}

// GroupSpec is one instance group of an app.
type GroupSpec struct {
	GroupID   string `yaml:"group_id"`   // default: a generated UUID-like ID
	GroupName string `yaml:"group_name"` // default: _DEFAULT_GROUP for the first group, else GroupID
	Instances int    `yaml:"instances"`
}

// ForeignChangeOrder is a deploy (CoDeploy) by someone else: it becomes due
// After the emulator started (emulated time), starts as soon as the app's
// lock is free, runs Duration and ends with Status (default 2; 3, 6 and 10
// end it failed; a non-terminal status such as 8 keeps the lock forever).
type ForeignChangeOrder struct {
	After    time.Duration `yaml:"after"`
	Duration time.Duration `yaml:"duration"`
	Status   int           `yaml:"status"`
}

func (a AppSpec) withDefaults(replaceDefault bool) AppSpec {
	if a.AppName == "" {
		a.AppName = a.AppID
	}
	if a.Region == "" {
		a.Region = "cn-hangzhou"
	}
	if a.NamespaceID == "" {
		a.NamespaceID = a.Region + ":default"
	}
	if a.RestartTime == 0 {
		a.RestartTime = 30 * time.Second
	}
	if a.ReplaceInstanceIDs == nil {
		v := replaceDefault
		a.ReplaceInstanceIDs = &v
	}
	if len(a.Groups) == 0 {
		a.Groups = []GroupSpec{{GroupName: DefaultGroupName, Instances: a.Instances}}
	} else {
		a.Groups = append([]GroupSpec(nil), a.Groups...)
	}
	for i := range a.Groups {
		g := &a.Groups[i]
		if g.GroupID == "" {
			g.GroupID = groupID(a.AppID, i)
		}
		if g.GroupName == "" {
			if i == 0 {
				g.GroupName = DefaultGroupName
			} else {
				g.GroupName = g.GroupID
			}
		}
	}
	return a
}

// groupID derives a stable UUID-shaped group ID from the app ID.
func groupID(appID string, i int) string {
	var h uint64 = 1469598103934665603
	for _, c := range appID {
		h = (h ^ uint64(c)) * 1099511628211
	}
	h ^= uint64(i + 1)
	x := fmt.Sprintf("%016x%016x", h, h*31+7)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

func (a AppSpec) validate() error {
	switch {
	case a.AppID == "":
		return errors.New("app_id is required")
	case a.Instances < 0:
		return errors.New("instances must not be negative")
	case a.RestartTime < 0:
		return errors.New("restart_time must not be negative")
	case a.RestartJitter < 0 || a.RestartJitter > 0.9:
		return errors.New("restart_jitter must be between 0 and 0.9")
	case a.Stopped && a.NotDeployed:
		return errors.New("stopped and not_deployed exclude each other")
	}
	if len(a.Groups) > 0 {
		sum := 0
		ids := map[string]bool{}
		for _, g := range a.Groups {
			if g.Instances < 0 {
				return errors.New("group instances must not be negative")
			}
			if g.GroupID != "" && ids[g.GroupID] {
				return fmt.Errorf("duplicate group_id %q", g.GroupID)
			}
			ids[g.GroupID] = true
			sum += g.Instances
		}
		if a.Instances != 0 && a.Instances != sum {
			return fmt.Errorf("instances %d differs from the sum of the groups' instances %d", a.Instances, sum)
		}
	}
	for _, d := range a.Deploys {
		if d.After < 0 || d.Duration <= 0 {
			return errors.New("deploy needs after >= 0 and a positive duration")
		}
		if d.Status < 0 || d.Status > 12 {
			return fmt.Errorf("deploy status %d is not a change-order status", d.Status)
		}
	}
	for _, f := range a.Faults {
		if err := f.validate(); err != nil {
			return err
		}
	}
	return nil
}

func validateApps(apps []AppSpec) error {
	seen := map[string]bool{}
	for i, a := range apps {
		if err := a.validate(); err != nil {
			return fmt.Errorf("app %d (%s): %w", i, a.AppID, err)
		}
		if seen[a.AppID] {
			return fmt.Errorf("app %d: duplicate app_id %q", i, a.AppID)
		}
		seen[a.AppID] = true
	}
	return nil
}

type appsFile struct {
	Apps []AppSpec `yaml:"apps"`
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// LoadApps reads a strict YAML apps file (`apps: [...]`). Errors name the
// file and line ("apps.yaml:7: field foo not found in type emulator.AppSpec").
func LoadApps(path string) ([]AppSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load apps: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f appsFile
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(path, err)
	}
	if len(f.Apps) == 0 {
		return nil, fmt.Errorf("%s: no apps", path)
	}
	lines := appLines(&root)
	seen := map[string]int{}
	for i, a := range f.Apps {
		line := 0
		if i < len(lines) {
			line = lines[i]
		}
		if err := a.validate(); err != nil {
			return nil, fmt.Errorf("%s:%d: app %q: %w", path, line, a.AppID, err)
		}
		if prev, dup := seen[a.AppID]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate app_id %q (first at line %d)", path, line, a.AppID, prev)
		}
		seen[a.AppID] = line
	}
	return f.Apps, nil
}

// yamlError rewrites yaml.v3's "line N: msg" into "path:N: msg".
func yamlError(path string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = path + ":" + yamlLine.ReplaceAllString(m, "$1: ")
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil && m[0] == 0 {
		return fmt.Errorf("%s:%s: %s", path, msg[m[2]:m[3]], msg[m[1]:])
	}
	return fmt.Errorf("%s: %s", path, msg)
}

// appLines returns the line of each item of the top-level apps sequence.
func appLines(root *yaml.Node) []int {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "apps" && m.Content[i+1].Kind == yaml.SequenceNode {
			var out []int
			for _, n := range m.Content[i+1].Content {
				out = append(out, n.Line)
			}
			return out
		}
	}
	return nil
}

// Demo app IDs (stable, so the demo and its docs can name them).
const (
	DemoAppWeb    = "7171a6ca-d1cd-4928-8642-7d5cfe69a001"
	DemoAppAPI    = "7171a6ca-d1cd-4928-8642-7d5cfe69a002"
	DemoAppWorker = "7171a6ca-d1cd-4928-8642-7d5cfe69a003"
	DemoAppLegacy = "7171a6ca-d1cd-4928-8642-7d5cfe69a004"
	// DemoNamespace holds every demo app.
	DemoNamespace = "cn-hangzhou:demo"
)

// DemoApps is a small demo world: demo-web (4 instances, 30 s restarts);
// demo-api (6 instances in two groups, a foreign deploy holds its lock from
// 0 to 2 min); demo-worker (3 instances, every restart change order fails);
// demo-legacy (never deployed).
func DemoApps() []AppSpec {
	return []AppSpec{
		{AppID: DemoAppWeb, AppName: "demo-web", NamespaceID: DemoNamespace, Region: "cn-hangzhou", Instances: 4, RestartTime: 30 * time.Second},
		{AppID: DemoAppAPI, AppName: "demo-api", NamespaceID: DemoNamespace, Region: "cn-hangzhou", RestartTime: 45 * time.Second,
			Groups:  []GroupSpec{{GroupName: DefaultGroupName, Instances: 4}, {GroupName: "canary", Instances: 2}},
			Deploys: []ForeignChangeOrder{{After: 0, Duration: 2 * time.Minute}}},
		{AppID: DemoAppWorker, AppName: "demo-worker", NamespaceID: DemoNamespace, Region: "cn-hangzhou", Instances: 3, RestartTime: 20 * time.Second,
			Faults: []Fault{{Kind: FaultCOFail}}},
		{AppID: DemoAppLegacy, AppName: "demo-legacy", NamespaceID: DemoNamespace, Region: "cn-hangzhou", NotDeployed: true},
	}
}
