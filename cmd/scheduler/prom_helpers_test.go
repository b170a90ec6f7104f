package main

// Helpers to run the real Prometheus server (Debian's prometheus package)
// against the daemon under test and read it through its HTTP API.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// promProc is a running Prometheus server.
type promProc struct {
	cmd    *exec.Cmd
	url    string // http://127.0.0.1:port
	logs   *syncBuffer
	exited chan struct{}
}

// prometheusBinary returns the prometheus server's path, skipping the test
// when it is not installed (CI installs Debian's prometheus package).
func prometheusBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("SAE_TEST_TOOLS_REQUIRED") == "1" {
			t.Fatalf("prometheus not on PATH (scripts/install-test-deps installs it): %v", err)
		}
		t.Skip("prometheus not on PATH (apt-get install prometheus)")
	}
	return p
}

// freePort returns a loopback port that was free a moment ago. Prometheus
// has no -listen-file, so the port is picked here; another process could
// take it in between, which would fail the test loudly, not silently.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPrometheus runs the prometheus binary with 1 s scrape and evaluation
// intervals, scraping target (host:port) as job "sae-scheduler" and loading
// ruleFiles, and waits until it is ready. It is stopped (SIGTERM, then
// SIGKILL) when the test ends.
func startPrometheus(t *testing.T, bin, target string, ruleFiles ...string) *promProc {
	t.Helper()
	dir := t.TempDir()
	rules := ""
	for _, f := range ruleFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		rules += fmt.Sprintf("  - %q\n", abs)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
%sscrape_configs:
  - job_name: sae-scheduler
    static_configs:
      - targets: [%q]
`, rules, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p := &promProc{
		cmd: exec.Command(bin,
			"--config.file="+cfgPath,
			"--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr,
			"--log.level=warn",
		),
		url:    "http://" + addr,
		logs:   &syncBuffer{},
		exited: make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("prometheus logs:\n%s", p.logs.String())
		}
	})
	waitFor(t, 20*time.Second, "prometheus /-/ready", func() bool {
		select {
		case <-p.exited:
			t.Fatalf("prometheus exited at start:\n%s", p.logs.String())
		default:
		}
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// stop sends SIGTERM and waits up to 10 s, then kills. It is idempotent.
func (p *promProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// promSample is one element of an instant vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [unix time, "value"]
}

// value returns the sample's value.
func (s promSample) value() float64 {
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return 0
	}
	return v
}

// query evaluates expr at the current time through /api/v1/query and
// returns the instant vector.
func (p *promProc) query(t *testing.T, expr string) []promSample {
	t.Helper()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/query?query="+url.QueryEscape(expr), &body)
	if body.Status != "success" || body.Data.ResultType != "vector" {
		t.Fatalf("query %q = %s %s (%s), want a success with a vector", expr, body.Status, body.Error, body.Data.ResultType)
	}
	return body.Data.Result
}

// promAlert is one alert of /api/v1/alerts.
type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"` // pending or firing
}

// alerts returns the pending and firing alerts.
func (p *promProc) alerts(t *testing.T) []promAlert {
	t.Helper()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	p.getJSON(t, "/api/v1/alerts", &body)
	if body.Status != "success" {
		t.Fatalf("GET /api/v1/alerts status = %q, want success", body.Status)
	}
	return body.Data.Alerts
}

func (p *promProc) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get(p.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decoding the answer (status %d): %v", path, resp.StatusCode, err)
	}
}
