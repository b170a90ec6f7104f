package config

import (
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var topKeys = []string{"sae", "defaults", "schedules", "state", "grafana"}

var topHints = map[string]string{
	"schedule": `unknown key (did you mean "schedules"?)`,
	"region":   "region belongs in sae.region (or in a schedule)",
	"endpoint": "endpoint belongs in sae.endpoint",
}

// file decodes the whole document. The result is meaningful only when no
// error was recorded.
func (d *decoder) file(data []byte) *Config {
	root := d.document(data)
	if root == nil {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "", "the file must be a mapping with the keys %s, got %s", joinKeys(topKeys), describe(root))
		return nil
	}
	pairs, _ := d.mapping(root, "")
	var sae, defaults, schedules, state, grafana *pair
	for i := range pairs {
		p := &pairs[i]
		switch p.key {
		case "sae":
			sae = p
		case "defaults":
			defaults = p
		case "schedules":
			schedules = p
		case "state":
			state = p
		case "grafana":
			grafana = p
		default:
			d.unknown(*p, "", topKeys, topHints)
		}
	}
	cfg := &Config{}
	cfg.SAE = d.sae(sae)
	cfg.State = d.state(state)
	cfg.Grafana = d.grafana(grafana)
	defs := d.defaults(defaults)
	if schedules == nil {
		d.errorf(root, "schedules", "is required: list at least one schedule")
		return cfg
	}
	cfg.Schedules = d.schedules(schedules.v, "schedules", cfg.SAE.Region, defs)
	return cfg
}

func joinKeys(keys []string) string {
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += k
	}
	return s
}

var (
	saeKeys     = []string{"region", "endpoint", "quota_per_minute", "quota_burst"}
	stateKeys   = []string{"driver", "path", "retention"}
	grafanaKeys = []string{"url", "token_env"}
	regionRE    = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	envNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func (d *decoder) sae(p *pair) SAE {
	out := SAE{QuotaPerMinute: DefaultQuotaPerMinute, QuotaBurst: DefaultQuotaBurst}
	if p == nil {
		return out
	}
	pairs, _ := d.mapping(p.v, "sae")
	var burst *yaml.Node
	quotaOK := true
	for _, q := range pairs {
		path := "sae." + q.key
		switch q.key {
		case "region":
			var ok bool
			out.Region, ok = d.region(q.v, path)
			d.saeRegionBad = !ok
		case "endpoint":
			if s, ok := d.str(q.v, path); ok && s != "" {
				if validEndpoint(s) {
					// Consumers append paths: a trailing "/" would double.
					out.Endpoint = strings.TrimSuffix(s, "/")
				} else {
					// The value is not echoed: an URL may carry user:password.
					d.errorf(q.v, path, "must be empty or an absolute http(s)://host[:port] URL without path, query or user info")
				}
			}
		case "quota_per_minute":
			v, ok := d.integer(q.v, path)
			switch {
			case !ok:
				quotaOK = false
			case v < 1 || v > MaxQuotaPerMinute:
				quotaOK = false
				d.errorf(q.v, path, "must be between 1 and %d (SAE allows %d calls per minute per account)", MaxQuotaPerMinute, MaxQuotaPerMinute)
			default:
				out.QuotaPerMinute = v
			}
		case "quota_burst":
			if v, ok := d.integer(q.v, path); ok {
				if v < 1 {
					d.errorf(q.v, path, "must be at least 1")
				} else {
					out.QuotaBurst = v
					burst = q.v
				}
			}
		default:
			d.unknown(q, "sae", saeKeys, nil)
		}
	}
	if burst != nil && quotaOK && out.QuotaBurst > out.QuotaPerMinute {
		d.errorf(burst, "sae.quota_burst", "must not exceed quota_per_minute (%d)", out.QuotaPerMinute)
	}
	return out
}

// region reads an SAE region ID such as cn-hangzhou; "" is allowed here and
// checked per schedule.
func (d *decoder) region(n *yaml.Node, path string) (string, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return "", false
	}
	if s != "" && !regionRE.MatchString(s) {
		d.errorf(n, path, "must be an SAE region ID like cn-hangzhou, got %q", s)
		return "", false
	}
	return s, true
}

// validEndpoint accepts http(s)://host[:port] with an optional trailing "/".
func validEndpoint(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return false
	}
	return validHostPort(u)
}

func validHostPort(u *url.URL) bool {
	if u.Hostname() == "" {
		return false
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		return err == nil && n >= 1 && n <= 65535
	}
	// A trailing ":" with no port.
	_, _, err := net.SplitHostPort(u.Host)
	return err != nil
}

func (d *decoder) state(p *pair) State {
	out := State{Driver: DefaultStateDriver, Path: DefaultStatePath, Retention: DefaultRetention}
	if p == nil {
		return out
	}
	pairs, _ := d.mapping(p.v, "state")
	for _, q := range pairs {
		path := "state." + q.key
		switch q.key {
		case "driver":
			s, ok := d.str(q.v, path)
			switch {
			case !ok:
			case s == "sqlite":
				out.Driver = s
			case s == "postgres":
				d.errorf(q.v, path, `driver "postgres" is not supported yet: use sqlite`)
			default:
				d.errorf(q.v, path, "must be sqlite, got %q", s)
			}
		case "path":
			if s, ok := d.str(q.v, path); ok {
				if s == "" {
					d.errorf(q.v, path, "must not be empty")
				} else {
					out.Path = s
				}
			}
		case "retention":
			if v, ok := d.duration(q.v, path); ok {
				if v == 0 {
					d.errorf(q.v, path, "must be greater than 0")
				} else {
					out.Retention = v
				}
			}
		default:
			d.unknown(q, "state", stateKeys, nil)
		}
	}
	return out
}

func (d *decoder) grafana(p *pair) *Grafana {
	if p == nil || isNull(p.v) {
		return nil
	}
	pairs, ok := d.mapping(p.v, "grafana")
	if !ok {
		return nil
	}
	out := &Grafana{}
	for _, q := range pairs {
		path := "grafana." + q.key
		switch q.key {
		case "url":
			if s, ok := d.str(q.v, path); ok {
				u, err := url.Parse(s)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || !validHostPort(u) {
					d.errorf(q.v, path, "must be an absolute http(s) URL without user info")
				} else {
					out.URL = s
				}
			}
		case "token_env":
			if s, ok := d.str(q.v, path); ok {
				if !envNameRE.MatchString(s) {
					// Not echoed: someone may have pasted the token itself here.
					d.errorf(q.v, path, "must be the name of an environment variable (like GRAFANA_TOKEN), not the token")
				} else {
					out.TokenEnv = s
				}
			}
		default:
			d.unknown(q, "grafana", grafanaKeys, nil)
		}
	}
	if !hasKey(pairs, "url") {
		d.errorf(p.k, "grafana.url", "is required when grafana is set")
	}
	if !hasKey(pairs, "token_env") {
		d.errorf(p.k, "grafana.token_env", "is required when grafana is set")
	}
	return out
}
