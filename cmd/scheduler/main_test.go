package main

// End-to-end tests of the real binary: TestMain builds it once; each test
// starts its own SAE emulator in-process (so it can read the emulator's
// record of change orders and restarts) and runs the binary against it on
// ports picked by the kernel. The daemon's port is discovered through
// `run -listen 127.0.0.1:0 -listen-file FILE`: the daemon writes the actual
// host:port to FILE once it listens.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/sae/emulator"
)

// The emulated account. The secret is a test value the emulator alone knows.
const (
	testAccessKeyID     = "LTAI5tE2ECmdTestKey01"
	testAccessKeySecret = "cmd-e2e-secret"
	testVersion         = "v0.0.0-e2e"
)

// bin is the binary under test, built by TestMain.
var bin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	// Any SDK client these tests build must never reach for the metadata
	// service or a CLI profile.
	os.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	os.Setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
	dir, err := os.MkdirTemp("", "scheduler-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "scheduler")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version="+testVersion, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the scheduler binary:", err)
		return 1
	}
	return m.Run()
}

// binEnv is the environment of the binary: the emulator's keys through the
// SDK's default chain, and nothing else of the host's credentials.
func binEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ALIBABA_CLOUD_") || strings.HasPrefix(kv, "SCHEDULER_API_TOKEN=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"ALIBABA_CLOUD_ACCESS_KEY_ID="+testAccessKeyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET="+testAccessKeySecret,
		"ALIBABA_CLOUD_ECS_METADATA_DISABLED=true",
		"ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true",
	)
	return append(env, extra...)
}

// result is a finished command.
type result struct {
	code           int
	stdout, stderr string
}

// runBin runs the binary to its end (bounded by timeout).
func runBin(t *testing.T, timeout time.Duration, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("scheduler %s: still running after %s\nstderr:\n%s", strings.Join(args, " "), timeout, stderr.String())
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("scheduler %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// emu is an SAE emulator serving on 127.0.0.1.
type emu struct {
	srv *emulator.Server
	url string
}

// startEmulator serves apps on a free loopback port until the test ends.
func startEmulator(t *testing.T, apps ...emulator.AppSpec) *emu {
	t.Helper()
	srv, err := emulator.New(emulator.Config{
		AccessKeys:     map[string]string{testAccessKeyID: testAccessKeySecret},
		Apps:           apps,
		QuotaPerMinute: -1, // the tests' budget is the client's bucket
		Seed:           1,
	})
	if err != nil {
		t.Fatalf("emulator.New() error = %v", err)
	}
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("emulator Start() error = %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return &emu{srv: srv, url: url}
}

// app is an emulated app of n instances whose restarts take restart.
func app(id string, n int, restart time.Duration) emulator.AppSpec {
	return emulator.AppSpec{AppID: id, AppName: id, Instances: n, RestartTime: restart}
}

// schedulesFile writes a schedules file for the emulator at endpoint: fast
// defaults (1-instance batches, 1 s pauses, short waits) and the given
// schedules block (a YAML list, indented 2 spaces).
func schedulesFile(t *testing.T, dir, endpoint, schedules string) string {
	t.Helper()
	path := filepath.Join(dir, "schedules.yaml")
	writeSchedules(t, path, endpoint, schedules)
	return path
}

func writeSchedules(t *testing.T, path, endpoint, schedules string) {
	t.Helper()
	content := fmt.Sprintf(`sae:
  region: cn-hangzhou
  endpoint: %s
  quota_per_minute: 60
  quota_burst: 60
defaults:
  batch: {size: 1, pause: 1s}
  lock_wait: 30s
  batch_timeout: 30s
  window: 1m
schedules:
%s`, endpoint, schedules)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer collects a process's output for concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemonProc is a running `scheduler run`.
type daemonProc struct {
	cmd    *exec.Cmd
	url    string // http://host:port
	logs   *syncBuffer
	exited chan struct{}
	code   int // valid once exited is closed
}

// startDaemon runs `scheduler run -config cfg` on a free port and waits for
// its -listen-file. The journal is a fresh file in t.TempDir() unless args
// give -state (the last -state wins).
func startDaemon(t *testing.T, cfg string, env []string, args ...string) *daemonProc {
	t.Helper()
	dir := t.TempDir()
	listenFile := filepath.Join(dir, "addr")
	args = append([]string{"run", "-config", cfg, "-listen", "127.0.0.1:0", "-listen-file", listenFile,
		"-log-format", "json", "-poll-initial", "500ms", "-shutdown-timeout", "30s",
		"-state", filepath.Join(dir, "scheduler.db")}, args...)
	p := &daemonProc{cmd: exec.Command(bin, args...), logs: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting the daemon: %v", err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		}
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("daemon logs:\n%s", p.logs.String())
		}
	})
	waitFor(t, 15*time.Second, "the daemon's -listen-file", func() bool {
		b, err := os.ReadFile(listenFile)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		p.url = "http://" + strings.TrimSpace(string(b))
		return true
	})
	return p
}

// signal sends sig to the daemon.
func (p *daemonProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", sig, err)
	}
}

// wait waits for the daemon to exit and returns its exit code.
func (p *daemonProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("the daemon did not exit within %s", timeout)
		return -1
	}
}

// stop sends SIGTERM and expects exit code 0.
func (p *daemonProc) stop(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 40*time.Second); code != 0 {
		t.Errorf("daemon exit code after SIGTERM = %d, want 0", code)
	}
}

// metric returns the value of the series name{labels} on /metrics (the
// labels given must match; others are ignored) and whether it exists.
func (p *daemonProc) metric(t *testing.T, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	return findSeries(resp.Body, name, labels)
}

var labelRE = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

func findSeries(r io.Reader, name string, labels map[string]string) (float64, bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		var lbls string
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.LastIndex(rest, "}")
			if end < 0 {
				continue
			}
			lbls, rest = rest[1:end], rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // a longer name with this prefix
		}
		got := map[string]string{}
		for _, m := range labelRE.FindAllStringSubmatch(lbls, -1) {
			got[m[1]] = m[2]
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err == nil {
			return v, true
		}
	}
	return 0, false
}

// waitMetric waits until name{labels} reaches at least min.
func (p *daemonProc) waitMetric(t *testing.T, timeout time.Duration, name string, labels map[string]string, min float64) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%s%v >= %v", name, labels, min), func() bool {
		v, _ := p.metric(t, name, labels)
		return v >= min
	})
}

// waitLog waits until the daemon's logs contain every one of subs on one line.
func (p *daemonProc) waitLog(t *testing.T, timeout time.Duration, subs ...string) string {
	t.Helper()
	var found string
	waitFor(t, timeout, fmt.Sprintf("a log line with %q", subs), func() bool {
		for _, line := range strings.Split(p.logs.String(), "\n") {
			ok := true
			for _, s := range subs {
				if !strings.Contains(line, s) {
					ok = false
					break
				}
			}
			if ok {
				found = line
				return true
			}
		}
		return false
	})
	return found
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpDo sends a request to the daemon and returns the status and body.
func httpDo(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// overlapping returns the pairs of change orders of one app whose lives
// [Created, Ended] intersect (a change order still running ends at now).
func overlapping(cos []emulator.ChangeOrderRecord) []string {
	var out []string
	end := func(c emulator.ChangeOrderRecord) time.Time {
		if c.Ended.IsZero() {
			return time.Now()
		}
		return c.Ended
	}
	for i := range cos {
		for j := i + 1; j < len(cos); j++ {
			a, b := cos[i], cos[j]
			if a.Created.Before(end(b)) && b.Created.Before(end(a)) {
				out = append(out, a.ID+" and "+b.ID)
			}
		}
	}
	return out
}
