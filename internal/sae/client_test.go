package sae

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		name                       string
		in                         string
		wantScheme, wantHost, port string
		wantErr                    string
	}{
		{name: "emulator over plain http", in: "http://127.0.0.1:18080", wantScheme: "http", wantHost: "127.0.0.1", port: "18080"},
		{name: "vpc endpoint over https without port", in: "https://sae-vpc.cn-hangzhou.aliyuncs.com", wantScheme: "https", wantHost: "sae-vpc.cn-hangzhou.aliyuncs.com"},
		{name: "trailing slash is fine", in: "HTTPS://sae.example.com:8443/", wantScheme: "https", wantHost: "sae.example.com", port: "8443"},
		{name: "ipv6 host keeps its brackets", in: "http://[::1]:18080", wantScheme: "http", wantHost: "[::1]", port: "18080"},
		{name: "no scheme", in: "127.0.0.1:18080", wantErr: "absolute http"},
		{name: "bare host", in: "sae.cn-hangzhou.aliyuncs.com", wantErr: "absolute http"},
		{name: "other scheme", in: "ftp://host", wantErr: "absolute http"},
		{name: "a path", in: "http://host/pop", wantErr: "scheme://host[:port] only"},
		{name: "a query", in: "http://host?x=1", wantErr: "scheme://host[:port] only"},
		{name: "user info", in: "http://u:p@host", wantErr: "scheme://host[:port] only"},
		{name: "port out of range", in: "http://host:70000", wantErr: "bad port"},
		{name: "empty port", in: "http://host:", wantErr: "empty port"},
		{name: "no host", in: "http://:8080", wantErr: "no host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scheme, host, port, err := parseEndpoint(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseEndpoint(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseEndpoint(%q) = %v", tt.in, err)
			}
			if scheme != tt.wantScheme || host != tt.wantHost || port != tt.port {
				t.Errorf("parseEndpoint(%q) = %q, %q, %q, want %q, %q, %q", tt.in, scheme, host, port, tt.wantScheme, tt.wantHost, tt.port)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "region is required", cfg: Config{}, wantErr: "region is required"},
		{name: "region must be a region id", cfg: Config{Region: "cn hangzhou"}, wantErr: "invalid region"},
		{name: "endpoint must be a URL", cfg: Config{Region: "cn-hangzhou", Endpoint: "127.0.0.1:18080"}, wantErr: "invalid endpoint"},
		{name: "public endpoint needs no credentials to build", cfg: Config{Region: "cn-hangzhou"}},
	}
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	t.Setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("New() = %v, %v, want a client", c, err)
				}
				if c.scheme != "https" || c.domain != "" {
					t.Errorf("New() scheme, domain = %q, %q, want https and the SDK's sae.<region>.aliyuncs.com", c.scheme, c.domain)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestDefaultChainFromEnvironment: with no Credentials the client signs
// with the SDK's default chain, here ALIBABA_CLOUD_* variables, and sends
// the STS token; the request goes to Endpoint's host and port over http.
func TestDefaultChainFromEnvironment(t *testing.T) {
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	t.Setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tFromTheEnvironment")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret")
	t.Setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "env-token")
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Method + " " + r.URL.Path + " " + r.Header.Get("Authorization") + " " + r.Header.Get("x-acs-security-token"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"Code":"200","Success":true,"Data":{"CurrentStatus":"RUNNING","LastChangeOrderRunning":"false","RunningInstances":"3"}}`))
	}))
	defer srv.Close()
	c, err := New(Config{Region: "cn-hangzhou", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.DescribeApplicationStatus(context.Background(), "app-1")
	if err != nil {
		t.Fatalf("DescribeApplicationStatus() = %v", err)
	}
	if st.CurrentStatus != jobs.AppRunning || st.RunningInstances != 3 || st.LastChangeOrderRunning {
		t.Errorf("DescribeApplicationStatus() = %+v, want RUNNING, 3 running, no change order (string-typed fields decoded)", st)
	}
	req, _ := got.Load().(string)
	if !strings.HasPrefix(req, "GET /pop/v1/sam/app/describeApplicationStatus acs LTAI5tFromTheEnvironment:") || !strings.HasSuffix(req, " env-token") {
		t.Errorf("request = %q, want a GET signed with the environment's key and token", req)
	}
}

func TestInWindow(t *testing.T) {
	shanghaiLoc := shanghai()
	notBefore := time.Date(2026, 12, 1, 2, 0, 0, 500e6, time.UTC) // 10:00:00.5 in Shanghai
	now := notBefore.Add(20 * time.Second)
	tests := []struct {
		name      string
		raw       string
		wantIn    bool
		wantKnown bool
	}{
		{name: "Beijing time of the submit second (truncated) is in", raw: "2026-12-01 10:00:00", wantIn: true, wantKnown: true},
		{name: "UTC wall time of the submit is in", raw: "2026-12-01 02:00:03", wantIn: true, wantKnown: true},
		{name: "an hour-old Beijing time is out", raw: "2026-12-01 09:00:00", wantIn: false, wantKnown: true},
		{name: "a Beijing time 7h old read as UTC lands in the future and is out", raw: "2026-12-01 03:00:00", wantIn: false, wantKnown: true},
		{name: "within slack before the submit is in", raw: "2026-12-01 09:59:52", wantIn: true, wantKnown: true},
		{name: "epoch milliseconds", raw: "1796090405000", wantIn: true, wantKnown: true},
		{name: "RFC 3339", raw: "2026-12-01T02:00:05Z", wantIn: true, wantKnown: true},
		{name: "unreadable", raw: "yesterday", wantIn: false, wantKnown: false},
		{name: "empty", raw: "", wantIn: false, wantKnown: false},
	}
	c := &Client{coLoc: shanghaiLoc, slack: DefaultMatchSlack}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, known := c.inWindow(tt.raw, notBefore, now)
			if in != tt.wantIn || known != tt.wantKnown {
				t.Errorf("inWindow(%q) = %v, %v, want %v, %v", tt.raw, in, known, tt.wantIn, tt.wantKnown)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	notBefore := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	clk := clock.NewFake(notBefore.Add(5 * time.Second))
	c := &Client{coLoc: shanghai(), slack: DefaultMatchSlack, clk: clk}
	want := map[string]bool{"a": true, "b": true}
	raw := "2026-12-01 10:00:01"
	tests := []struct {
		name      string
		co        jobs.ChangeOrder
		raw       string
		wantOK    bool
		wantKnown bool
	}{
		{name: "same targets in another order", co: jobs.ChangeOrder{AppID: "app", CoTypeCode: CoRestartInstances, Targets: []string{"b", "a"}}, raw: raw, wantOK: true, wantKnown: true},
		{name: "a subset is not it", co: jobs.ChangeOrder{AppID: "app", CoTypeCode: CoRestartInstances, Targets: []string{"a"}}, raw: raw, wantKnown: true},
		{name: "a superset is not it", co: jobs.ChangeOrder{CoTypeCode: CoRestartInstances, Targets: []string{"a", "b", "c"}}, raw: raw, wantKnown: true},
		{name: "a deploy is not it", co: jobs.ChangeOrder{CoTypeCode: "CoDeploy", Targets: []string{"a", "b"}}, raw: raw, wantKnown: true},
		{name: "another app's is not it", co: jobs.ChangeOrder{AppID: "other", CoTypeCode: CoRestartInstances, Targets: []string{"a", "b"}}, raw: raw, wantKnown: true},
		{name: "an older one is not it", co: jobs.ChangeOrder{CoTypeCode: CoRestartInstances, Targets: []string{"a", "b"}}, raw: "2026-11-30 10:00:01", wantKnown: true},
		{name: "an unreadable time cannot be told", co: jobs.ChangeOrder{CoTypeCode: CoRestartInstances, Targets: []string{"a", "b"}}, raw: "?", wantKnown: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, known := c.matches(tt.co, tt.raw, "app", want, notBefore)
			if ok != tt.wantOK || known != tt.wantKnown {
				t.Errorf("matches() = %v, %v, want %v, %v", ok, known, tt.wantOK, tt.wantKnown)
			}
		})
	}
}

func TestDefaultBackoff(t *testing.T) {
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 2400 * time.Millisecond, 3600 * time.Millisecond},
		{2, 4800 * time.Millisecond, 7200 * time.Millisecond},
		{5, 38400 * time.Millisecond, 57600 * time.Millisecond},
		{6, 48 * time.Second, 72 * time.Second},
		{50, 48 * time.Second, 72 * time.Second},
	}
	for _, tt := range tests {
		for range 20 {
			if d := DefaultBackoff(tt.n); d < tt.min || d > tt.max {
				t.Errorf("DefaultBackoff(%d) = %v, want in [%v, %v]", tt.n, d, tt.min, tt.max)
			}
		}
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{name: "milliseconds from x-acs-retry-after", h: http.Header{"X-Acs-Retry-After": {"1500"}}, want: 1500 * time.Millisecond},
		{name: "capped at a minute", h: http.Header{"X-Acs-Retry-After": {"600000"}}, want: time.Minute},
		{name: "seconds from Retry-After", h: http.Header{"Retry-After": {"3"}}, want: 3 * time.Second},
		{name: "garbage is no hint", h: http.Header{"X-Acs-Retry-After": {"soon"}}, want: 0},
		{name: "absent", h: http.Header{}, want: 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.h); got != tt.want {
			t.Errorf("%s: retryAfter() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestStaticProviderNameSurvivesLocking: the wrapper passes the provider
// through (the SDK signs x-acs-credentials-provider with its name).
func TestStaticProviderNameSurvivesLocking(t *testing.T) {
	p := &lockedProvider{p: credentials.NewStaticAKCredentialsProvider("ak", "sk")}
	cred, err := p.GetCredentials()
	if err != nil || cred.AccessKeyId != "ak" || p.GetProviderName() != "static_ak" {
		t.Errorf("lockedProvider = %+v, %v, %q, want ak and static_ak", cred, err, p.GetProviderName())
	}
}

func TestCOCreateTime(t *testing.T) {
	start := time.Date(2026, 12, 1, 2, 0, 3, 0, time.UTC) // first batch start, 10:00:03 in Beijing
	tests := []struct {
		name       string
		raw        string
		firstStart time.Time
		want       time.Time
	}{
		{name: "Beijing reading just before the start is kept", raw: "2026-12-01 10:00:01", firstStart: start, want: time.Date(2026, 12, 1, 2, 0, 1, 0, time.UTC)},
		{name: "no pipelines: Beijing reading", raw: "2026-12-01 10:00:01", want: time.Date(2026, 12, 1, 2, 0, 1, 0, time.UTC)},
		{name: "a UTC CreateTime is recognised by the start", raw: "2026-12-01 02:00:01", firstStart: start, want: time.Date(2026, 12, 1, 2, 0, 1, 0, time.UTC)},
		{name: "a long approval wait keeps the Beijing reading", raw: "2026-12-01 09:30:00", firstStart: start, want: time.Date(2026, 12, 1, 1, 30, 0, 0, time.UTC)},
		{name: "epoch milliseconds are absolute", raw: "1796090401000", firstStart: start, want: time.Date(2026, 12, 1, 2, 0, 1, 0, time.UTC)},
		{name: "unreadable is zero", raw: "soon", firstStart: start},
	}
	c := &Client{coLoc: shanghai(), slack: DefaultMatchSlack}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.coCreateTime(tt.raw, tt.firstStart); !got.Equal(tt.want) {
				t.Errorf("coCreateTime(%q) = %v, want %v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestPipelineTimes(t *testing.T) {
	tests := []struct {
		name                string
		raw                 string
		wantStart, wantLast int64 // epoch ms, 0 = zero time
	}{
		{name: "array of batches", raw: `[{"StartTime":2000,"UpdateTime":5000},{"StartTime":1000,"UpdateTime":9000},{"StartTime":0,"UpdateTime":0}]`, wantStart: 1000, wantLast: 9000},
		{name: "a string holding the array", raw: `"[{\"StartTime\":\"1000\",\"UpdateTime\":7000}]"`, wantStart: 1000, wantLast: 7000},
		{name: "an object is ignored", raw: `{"0":{"StartTime":1}}`},
		{name: "absent", raw: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, last := pipelineTimes([]byte(tt.raw))
			ms := func(t time.Time) int64 {
				if t.IsZero() {
					return 0
				}
				return t.UnixMilli()
			}
			if ms(start) != tt.wantStart || ms(last) != tt.wantLast {
				t.Errorf("pipelineTimes(%s) = %d, %d, want %d, %d", tt.raw, ms(start), ms(last), tt.wantStart, tt.wantLast)
			}
		})
	}
}

// TestNoCredentialsIsAnAccountError: with an empty default chain no call can
// be signed; that ends the account's run instead of being retried.
func TestNoCredentialsIsAnAccountError(t *testing.T) {
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	t.Setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")
	t.Setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("HOME", t.TempDir())
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c, err := New(Config{Region: "cn-hangzhou", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeApplicationStatus(context.Background(), "app-1")
	if jobs.ClassOf(err) != jobs.ClassAccount || jobs.CodeOf(err) != CodeCredentials {
		t.Errorf("DescribeApplicationStatus() = %v, want account %s", err, CodeCredentials)
	}
	if hits.Load() != 0 {
		t.Errorf("requests sent = %d, want 0", hits.Load())
	}
}
