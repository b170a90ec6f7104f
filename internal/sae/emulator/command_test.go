package emulator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/sae"
)

func TestLoadApps(t *testing.T) {
	apps, err := LoadApps("testdata/apps-valid.yaml")
	if err != nil {
		t.Fatalf("LoadApps(valid) = %v", err)
	}
	if len(apps) != 3 || apps[0].RestartTime != 45*time.Second || len(apps[0].Faults) != 2 || apps[0].Deploys[0].Duration != 90*time.Second ||
		apps[0].ReplaceInstanceIDs == nil || !*apps[0].ReplaceInstanceIDs || len(apps[1].Groups) != 2 || !apps[2].NotDeployed {
		t.Errorf("LoadApps(valid) = %+v", apps)
	}
	if _, err := New(Config{Apps: apps}); err != nil {
		t.Errorf("New(valid apps) = %v", err)
	}

	tests := []struct {
		file string
		want string
	}{
		{file: "invalid-unknown-field.yaml", want: "testdata/invalid-unknown-field.yaml:4: field restart_tme not found in type emulator.AppSpec"},
		{file: "invalid-bad-duration.yaml", want: "testdata/invalid-bad-duration.yaml:3: cannot unmarshal !!str `30 seconds` into time.Duration"},
		{file: "invalid-duplicate-app.yaml", want: `testdata/invalid-duplicate-app.yaml:5: duplicate app_id "a" (first at line 2)`},
		{file: "invalid-missing-app-id.yaml", want: `testdata/invalid-missing-app-id.yaml:3: app "": app_id is required`},
		{file: "invalid-groups-sum.yaml", want: `testdata/invalid-groups-sum.yaml:2: app "a": instances 5 differs from the sum of the groups' instances 4`},
		{file: "invalid-fault-kind.yaml", want: `testdata/invalid-fault-kind.yaml:2: app "a": unknown fault kind "explode"`},
		{file: "invalid-syntax.yaml", want: "testdata/invalid-syntax.yaml:3: mapping values are not allowed in this context"},
		{file: "invalid-top-level-key.yaml", want: "testdata/invalid-top-level-key.yaml:3: field quota not found in type emulator.appsFile"},
		{file: "invalid-empty.yaml", want: "testdata/invalid-empty.yaml: no apps"},
		{file: "no-such-file.yaml", want: "load apps: open testdata/no-such-file.yaml: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := LoadApps(filepath.Join("testdata", tt.file))
			if err == nil || err.Error() != tt.want {
				t.Errorf("LoadApps() = %v, want %q", err, tt.want)
			}
		})
	}
}

// lines delivers r's lines on a channel.
func lines(r io.Reader) <-chan string {
	ch := make(chan string, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

func nextLine(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("output ended early")
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no output within 10s")
	}
	return ""
}

func TestRunCommandServesTheDemoWorld(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- RunCommand(ctx, []string{"-listen", "127.0.0.1:0", "-access-key-id", "ak", "-access-key-secret", "sk", "-error-code-in", "errorcode"}, pw, &stderr)
		pw.Close()
	}()
	out := lines(pr)
	first := nextLine(t, out)
	base, ok := strings.CutPrefix(first, "listening on http://")
	if !ok {
		t.Fatalf("first line = %q, want listening on http://ADDR", first)
	}
	var appLines []string
	for range DemoApps() {
		appLines = append(appLines, nextLine(t, out))
	}
	if !strings.HasPrefix(appLines[0], "app "+DemoAppWeb+" demo-web") {
		t.Errorf("app lines = %q, want the demo app IDs", appLines)
	}

	host, port, _ := strings.Cut(base, ":")
	c, err := sae.NewClientWithAccessKey("cn-hangzhou", "ak", "sk")
	if err != nil {
		t.Fatal(err)
	}
	req := sae.CreateRestartInstancesRequest()
	req.Domain, req.Port, req.Scheme = host, port, "http"
	req.AppId, req.InstanceIds = DemoAppLegacy, "x"
	_, err = c.RestartInstances(req)
	// -error-code-in errorcode: "Code":"400" and the id in ErrorCode.
	if se := serverError(t, err); se.ErrorCode() != "400" || !strings.Contains(se.Message(), "not been deployed") {
		t.Errorf("restart of demo-legacy = %s %q, want Code 400 with the NotDeployYet message", se.ErrorCode(), se.Message())
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("RunCommand() = %d, want 0 (stderr %s)", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunCommand did not stop after ctx was cancelled")
	}
}

func TestRunCommandRejects(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "an unknown flag is a usage error", args: []string{"-nope"}, wantCode: 2, wantErr: "flag provided but not defined: -nope"},
		{name: "a bad -error-code-in is a usage error", args: []string{"-error-code-in", "both"}, wantCode: 2, wantErr: "-error-code-in must be code or errorcode"},
		{name: "a time scale below 1 is a usage error", args: []string{"-time-scale", "0.5"}, wantCode: 2, wantErr: "-time-scale must be >= 1"},
		{name: "a stray argument is a usage error", args: []string{"extra"}, wantCode: 2, wantErr: `unexpected argument "extra"`},
		{name: "an invalid apps file fails with its line", args: []string{"-apps", "testdata/invalid-unknown-field.yaml", "-listen", "127.0.0.1:0"}, wantCode: 1, wantErr: "invalid-unknown-field.yaml:4: field restart_tme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			got := RunCommand(context.Background(), tt.args, &stdout, &stderr)
			if got != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("RunCommand() = %d, stderr %q; want %d containing %q", got, stderr.String(), tt.wantCode, tt.wantErr)
			}
		})
	}
}

// TestPopCoreClient runs the independent npm client @alicloud/pop-core against
// the emulator. It skips only when node_modules is absent and
// SAE_TEST_TOOLS_REQUIRED is not "1" (scripts/test installs it and sets it).
func TestPopCoreClient(t *testing.T) {
	dir := filepath.Join("testdata", "popcore")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@alicloud", "pop-core")); err != nil {
		if os.Getenv("SAE_TEST_TOOLS_REQUIRED") == "1" {
			t.Fatalf("pop-core is not installed (cd %s && npm install --no-audit --no-fund): %v", dir, err)
		}
		t.Skipf("pop-core not installed; run: cd %s && npm install --no-audit --no-fund", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found: %v", err)
	}
	e := newEnv(t, Config{})
	id := e.instanceIDs(appA)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"SAE_EMULATOR_URL="+e.base, "SAE_APP_ID="+appA, "SAE_INSTANCE_ID="+id,
		"SAE_AK="+testAK, "SAE_SECRET="+testSecret,
		"SAE_STS_AK="+stsAK, "SAE_STS_SECRET="+stsSecret, "SAE_STS_TOKEN="+stsToken)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node check.js = %v\n%s", err, out)
	}
	type stepResult struct {
		Step    string         `json:"step"`
		OK      bool           `json:"ok"`
		Code    string         `json:"code"`
		Success bool           `json:"success"`
		Status  int            `json:"status"`
		Message string         `json:"message"`
		Data    map[string]any `json:"data"`
	}
	got := map[string]stepResult{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r stepResult
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("bad output line %q: %v", l, err)
		}
		got[r.Step] = r
	}
	recs := e.srv.ChangeOrders(appA)
	tests := []struct {
		step     string
		wantOK   bool
		wantCode string
	}{
		{step: "restart", wantOK: true, wantCode: "200"},
		{step: "status", wantOK: true, wantCode: "200"},
		{step: "list_empty_key", wantOK: true, wantCode: "200"},
		{step: "sts_status", wantOK: true, wantCode: "200"},
		{step: "wrong_secret", wantOK: false, wantCode: "SignatureDoesNotMatch"},
	}
	for _, tt := range tests {
		t.Run(tt.step, func(t *testing.T) {
			r, ok := got[tt.step]
			if !ok || r.OK != tt.wantOK || r.Code != tt.wantCode {
				t.Errorf("step %s = %+v, want ok=%v code %s", tt.step, r, tt.wantOK, tt.wantCode)
			}
		})
	}
	if len(recs) != 1 || recs[0].Targets[0] != id || got["restart"].Data["ChangeOrderId"] != recs[0].ID {
		t.Errorf("ChangeOrders() = %+v, restart data %v; want pop-core's restart recorded", recs, got["restart"].Data)
	}
	if got["status"].Data["LastChangeOrderId"] != recs[0].ID {
		t.Errorf("status data = %v, want LastChangeOrderId %s", got["status"].Data, recs[0].ID)
	}
}
