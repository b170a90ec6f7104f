package sae_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
	"github.com/sae-scheduler/sae-scheduler/internal/sae"
	"github.com/sae-scheduler/sae-scheduler/internal/sae/emulator"
)

// End-to-end tests: the real SDK client against the emulator over HTTP on
// loopback. Client and emulator share one Scaled clock, so SAE's change-order
// CreateTime and the client's submit time agree, and the quota bucket runs
// in emulated time.

const (
	ak        = "LTAI5tEmulatorKey01"
	secret    = "emulator-secret"
	stsAK     = "STS.NUgYrLnoC37mZZCNnAbez2"
	stsSecret = "sts-secret"
	// stsToken must never appear in an error or a log line.
	stsToken = "CAIS8gF1q6Ft5B2yfSjIr5bSEvn3vKdv0qWtbkjzkWA4YvZ-emulator-token-must-not-leak"

	appWeb   = "1daa7236-3844-4f36-b39a-605b0cc0a001"
	appBig   = "1daa7236-3844-4f36-b39a-605b0cc0a002"
	appBusy  = "1daa7236-3844-4f36-b39a-605b0cc0a003"
	appNew   = "1daa7236-3844-4f36-b39a-605b0cc0a004"
	appOther = "1daa7236-3844-4f36-b39a-605b0cc0a005"
	nsProd   = "cn-hangzhou:prod"
)

var origin = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	// The SDK's default chain must never reach the ECS metadata address.
	os.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	os.Setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
	os.Exit(m.Run())
}

// defaultApps: web (3 instances), big (250 instances in two groups), busy (a
// foreign deploy holds its lock all day), new (never deployed), other (in
// another namespace). Restarts run an emulated hour, so a change order
// stays running for the whole test.
func defaultApps() []emulator.AppSpec {
	return []emulator.AppSpec{
		{AppID: appWeb, AppName: "web", NamespaceID: nsProd, Instances: 3, RestartTime: time.Hour},
		{AppID: appBig, AppName: "big", NamespaceID: nsProd, RestartTime: time.Hour,
			Groups: []emulator.GroupSpec{{GroupName: emulator.DefaultGroupName, Instances: 230}, {GroupName: "canary", Instances: 20}}},
		{AppID: appBusy, AppName: "busy", NamespaceID: nsProd, Instances: 2, RestartTime: time.Hour,
			Deploys: []emulator.ForeignChangeOrder{{After: 0, Duration: 24 * time.Hour}}},
		{AppID: appNew, AppName: "fresh", NamespaceID: nsProd, NotDeployed: true},
		{AppID: appOther, AppName: "other", NamespaceID: "cn-hangzhou:dev", Instances: 1, RestartTime: time.Hour},
	}
}

type world struct {
	srv  *emulator.Server
	base string
	clk  clock.Clock
}

// newWorld starts an emulator on 127.0.0.1 with emulated time running
// factor times faster than real time.
func newWorld(t *testing.T, cfg emulator.Config, factor float64) *world {
	t.Helper()
	clk := clock.NewScaled(origin, factor)
	cfg.Clock = clk
	cfg.AccessKeys = map[string]string{ak: secret}
	cfg.STSTokens = map[string]emulator.STSKey{stsAK: {Secret: stsSecret, Token: stsToken}}
	if cfg.Apps == nil {
		cfg.Apps = defaultApps()
	}
	srv, err := emulator.New(cfg)
	if err != nil {
		t.Fatalf("emulator.New() = %v", err)
	}
	base, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start() = %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &world{srv: srv, base: base, clk: clk}
}

// client builds a client of the world's account; mod may change the config.
func (w *world) client(t *testing.T, mod func(*sae.Config)) *sae.Client {
	t.Helper()
	cfg := sae.Config{
		Region:      "cn-hangzhou",
		Endpoint:    w.base,
		Credentials: credentials.NewStaticAKCredentialsProvider(ak, secret),
		Clock:       w.clk,
		Timeout:     5 * time.Second,
		Backoff:     func(int) time.Duration { return time.Millisecond },
		// Each case here exercises the calls themselves; the metadata cache
		// has its own test (TestE2EMetadataCache).
		MetadataTTL: -1,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := sae.New(cfg)
	if err != nil {
		t.Fatalf("sae.New() = %v", err)
	}
	return c
}

// restartCOs returns the app's RestartInstances change orders.
func (w *world) restartCOs(appID string) []emulator.ChangeOrderRecord {
	var out []emulator.ChangeOrderRecord
	for _, co := range w.srv.ChangeOrders(appID) {
		if co.Type == sae.CoRestartInstances {
			out = append(out, co)
		}
	}
	return out
}

func (w *world) instanceIDs(appID string, n int) []string {
	var ids []string
	for _, in := range w.srv.Instances(appID) {
		ids = append(ids, in.ID)
	}
	sort.Strings(ids)
	return ids[:min(n, len(ids))]
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestE2EReadOperations(t *testing.T) {
	w := newWorld(t, emulator.Config{}, 1000)
	c := w.client(t, nil)
	ctx := ctxT(t)

	apps, err := c.ListApplications(ctx, nsProd)
	if err != nil {
		t.Fatalf("ListApplications() = %v", err)
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
		if a.NamespaceID != nsProd || a.Region != "cn-hangzhou" {
			t.Errorf("ListApplications() app %+v, want namespace %s region cn-hangzhou", a, nsProd)
		}
	}
	sort.Strings(names)
	if want := []string{"big", "busy", "fresh", "web"}; !slices.Equal(names, want) {
		t.Errorf("ListApplications() names = %v, want %v", names, want)
	}

	app, err := c.DescribeApplication(ctx, appWeb)
	if err != nil {
		t.Fatalf("DescribeApplication() = %v", err)
	}
	if want := (jobs.App{ID: appWeb, Name: "web", NamespaceID: nsProd, Region: "cn-hangzhou"}); app != want {
		t.Errorf("DescribeApplication() = %+v, want %+v", app, want)
	}

	st, err := c.DescribeApplicationStatus(ctx, appBusy)
	if err != nil {
		t.Fatalf("DescribeApplicationStatus() = %v", err)
	}
	if st.CurrentStatus != jobs.AppRunning || !st.LastChangeOrderRunning || st.LastChangeOrderID == "" {
		t.Errorf("DescribeApplicationStatus(busy) = %+v, want RUNNING with a running last change order", st)
	}

	before := w.srv.Calls("DescribeApplicationInstances")
	groupsBefore := w.srv.Calls("DescribeApplicationGroups")
	ins, err := c.ListInstances(ctx, appBig)
	if err != nil {
		t.Fatalf("ListInstances() = %v", err)
	}
	if len(ins) != 250 {
		t.Errorf("ListInstances(big) = %d instances, want 250", len(ins))
	}
	seen := map[string]bool{}
	for _, in := range ins {
		if seen[in.ID] {
			t.Errorf("ListInstances(big) lists %s twice", in.ID)
		}
		seen[in.ID] = true
		if in.GroupID == "" || in.ContainerStatus == "" || in.CreateTime.IsZero() {
			t.Errorf("ListInstances(big) instance %+v lacks group, status or create time", in)
		}
	}
	// 230 + 20 instances in pages of 100: 3 + 1 instance pages, 1 groups call.
	if got := w.srv.Calls("DescribeApplicationInstances") - before; got != 4 {
		t.Errorf("DescribeApplicationInstances calls = %d, want 4", got)
	}
	if got := w.srv.Calls("DescribeApplicationGroups") - groupsBefore; got != 1 {
		t.Errorf("DescribeApplicationGroups calls = %d, want 1", got)
	}

	none, err := c.ListInstances(ctx, appNew)
	if err != nil || len(none) != 0 {
		t.Errorf("ListInstances(not deployed) = %v, %v, want no instances and nil", none, err)
	}
}

func TestE2ERestartLifecycle(t *testing.T) {
	w := newWorld(t, emulator.Config{}, 1000)
	c := w.client(t, nil)
	ctx := ctxT(t)
	ids := w.instanceIDs(appWeb, 2)

	notBefore := w.clk.Now()
	coID, err := c.RestartInstances(ctx, appWeb, ids)
	if err != nil {
		t.Fatalf("RestartInstances() = %v", err)
	}
	co, err := c.DescribeChangeOrder(ctx, coID)
	if err != nil {
		t.Fatalf("DescribeChangeOrder() = %v", err)
	}
	got := slices.Clone(co.Targets)
	sort.Strings(got)
	if co.ID != coID || co.AppID != appWeb || co.CoTypeCode != sae.CoRestartInstances || !slices.Equal(got, ids) {
		t.Errorf("DescribeChangeOrder() = %+v, want %s of %s restarting %v", co, coID, appWeb, ids)
	}
	if co.Status != jobs.COPreparing && co.Status != jobs.CORunning {
		t.Errorf("DescribeChangeOrder().Status = %d, want 0 or 1", co.Status)
	}
	// SAE's CreateTime is zone-less Beijing time in whole seconds.
	if recs := w.restartCOs(appWeb); len(recs) != 1 || !co.CreateTime.Equal(recs[0].Created.Truncate(time.Second)) {
		t.Errorf("DescribeChangeOrder().CreateTime = %v, want the emulator's creation time %+v to the second", co.CreateTime, recs)
	}

	list, err := c.ListChangeOrders(ctx, appWeb, -1)
	if err != nil {
		t.Fatalf("ListChangeOrders() = %v", err)
	}
	if len(list) != 1 || list[0].ID != coID || list[0].CoTypeCode != sae.CoRestartInstances {
		t.Errorf("ListChangeOrders() = %+v, want just %s", list, coID)
	}
	if done, err := c.ListChangeOrders(ctx, appWeb, jobs.COSucceeded); err != nil || len(done) != 0 {
		t.Errorf("ListChangeOrders(status 2) = %+v, %v, want none", done, err)
	}

	found, ok, err := c.FindRestartChangeOrder(ctx, appWeb, []string{ids[1], ids[0]}, notBefore)
	if err != nil || !ok || found.ID != coID {
		t.Errorf("FindRestartChangeOrder(same set) = %s, %v, %v, want %s, true, nil", found.ID, ok, err, coID)
	}
	if _, ok, err := c.FindRestartChangeOrder(ctx, appWeb, ids[:1], notBefore); err != nil || ok {
		t.Errorf("FindRestartChangeOrder(other set) = %v, %v, want false, nil", ok, err)
	}
	if _, ok, err := c.FindRestartChangeOrder(ctx, appWeb, ids, w.clk.Now().Add(time.Hour)); err != nil || ok {
		t.Errorf("FindRestartChangeOrder(later window) = %v, %v, want false, nil", ok, err)
	}

	if err := c.AbortChangeOrder(ctx, coID); err != nil {
		t.Fatalf("AbortChangeOrder() = %v", err)
	}
	co, err = c.DescribeChangeOrder(ctx, coID)
	if err != nil || co.Status != jobs.COAborted {
		t.Errorf("DescribeChangeOrder() after abort = %+v, %v, want status 6", co, err)
	}
}

// TestE2EErrorClassesAcrossModes runs SAE's business errors through both
// unconfirmed body shapes (code in Code / in ErrorCode with "Code":"400")
// and both statuses (4xx / 200 with Success:false).
func TestE2EErrorClassesAcrossModes(t *testing.T) {
	type tc struct {
		name      string
		fault     *emulator.Fault
		call      func(ctx context.Context, c *sae.Client, w *world) error
		wantClass jobs.ErrorClass
		wantCode  string
	}
	restart := func(app string, ids ...string) func(context.Context, *sae.Client, *world) error {
		return func(ctx context.Context, c *sae.Client, w *world) error {
			if len(ids) == 0 {
				ids = w.instanceIDs(app, 1)
			}
			_, err := c.RestartInstances(ctx, app, ids)
			return err
		}
	}
	status := func(app string) func(context.Context, *sae.Client, *world) error {
		return func(ctx context.Context, c *sae.Client, _ *world) error {
			_, err := c.DescribeApplicationStatus(ctx, app)
			return err
		}
	}
	cases := []tc{
		{name: "a foreign deploy holds the lock", call: restart(appBusy), wantClass: jobs.ClassLock, wantCode: "Application.ChangerOrderRunning"},
		{name: "a never deployed app is not_deployed", call: restart(appNew, "x"), wantClass: jobs.ClassNotDeployed, wantCode: "Application.NotDeployYet"},
		{name: "a vanished instance is stale_instances", call: restart(appWeb, "web-gone-0"), wantClass: jobs.ClassStaleInstances, wantCode: "InvalidParameter.Obviously"},
		{name: "an unknown app is fatal", call: status("no-such-app"), wantClass: jobs.ClassFatal, wantCode: "InvalidApplication.NotFound"},
		{name: "an unknown change order is fatal", wantClass: jobs.ClassFatal, wantCode: "InvalidChangeOrder.NotFound",
			call: func(ctx context.Context, c *sae.Client, _ *world) error {
				_, err := c.DescribeChangeOrder(ctx, "no-such-co")
				return err
			}},
		{name: "an unknown app id on ListChangeOrders is fatal (404)", wantClass: jobs.ClassFatal, wantCode: "InvalidAppId.NotFound",
			call: func(ctx context.Context, c *sae.Client, _ *world) error {
				_, err := c.ListChangeOrders(ctx, "no-such-app", -1)
				return err
			}},
		{name: "system upgrading is retryable", fault: &emulator.Fault{Kind: emulator.FaultCode, Code: "System.Upgrading", Action: "DescribeApplicationStatus", AppID: appWeb, Count: 1},
			call: status(appWeb), wantClass: jobs.ClassRetryable, wantCode: "System.Upgrading"},
		{name: "invalid status on a restart is retryable", fault: &emulator.Fault{Kind: emulator.FaultCode, Code: "Application.InvalidStatus", Action: "RestartInstances", AppID: appWeb, Count: 1},
			call: restart(appWeb), wantClass: jobs.ClassRetryable, wantCode: "Application.InvalidStatus"},
		{name: "arrears end the account", fault: &emulator.Fault{Kind: emulator.FaultCode, Code: "user.indebt", Action: "RestartInstances", AppID: appWeb, Count: 1},
			call: restart(appWeb), wantClass: jobs.ClassAccount, wantCode: "user.indebt"},
		{name: "the account's compute quota ends the account", fault: &emulator.Fault{Kind: emulator.FaultCode, Code: "NoComputeResourceQuota.User.Exceed", Action: "RestartInstances", AppID: appWeb, Count: 1},
			call: restart(appWeb), wantClass: jobs.ClassAccount, wantCode: "NoComputeResourceQuota.User.Exceed"},
		{name: "the app's compute quota is fatal", fault: &emulator.Fault{Kind: emulator.FaultCode, Code: "NoComputeResourceQuota.App.Exceed", Action: "RestartInstances", AppID: appWeb, Count: 1},
			call: restart(appWeb), wantClass: jobs.ClassFatal, wantCode: "NoComputeResourceQuota.App.Exceed"},
		{name: "an unheard-of code is unknown", fault: &emulator.Fault{Kind: emulator.FaultCode, Code: "Brand.NewCode", Action: "DescribeApplicationStatus", AppID: appWeb, Count: 1},
			call: status(appWeb), wantClass: jobs.ClassUnknown, wantCode: "Brand.NewCode"},
	}
	modes := []struct {
		codeIn emulator.ErrorCodeMode
		status emulator.BusinessStatusMode
	}{
		{emulator.CodeInCode, emulator.HTTP4xx},
		{emulator.CodeInErrorCode, emulator.HTTP4xx},
		{emulator.CodeInCode, emulator.HTTP200},
		{emulator.CodeInErrorCode, emulator.HTTP200},
	}
	for _, m := range modes {
		t.Run(fmt.Sprintf("code in %s, status %s", m.codeIn, m.status), func(t *testing.T) {
			w := newWorld(t, emulator.Config{ErrorCodeIn: m.codeIn, BusinessErrorStatus: m.status}, 1000)
			c := w.client(t, nil)
			for _, tt := range cases {
				t.Run(tt.name, func(t *testing.T) {
					if tt.fault != nil {
						w.srv.InjectFault(*tt.fault)
					}
					err := tt.call(ctxT(t), c, w)
					var se *jobs.SAEError
					if !errors.As(err, &se) {
						t.Fatalf("error = %v, want a *jobs.SAEError", err)
					}
					if se.Class != tt.wantClass || se.Code != tt.wantCode {
						t.Errorf("error = %s %s (%v), want %s %s", se.Class, se.Code, err, tt.wantClass, tt.wantCode)
					}
					if se.Message == "" || se.RequestID == "" {
						t.Errorf("error = %+v, want SAE's message and request id kept", se)
					}
				})
			}
			if n := len(w.restartCOs(appWeb)); n != 0 {
				t.Errorf("restart change orders of web = %d, want 0 (every submit was rejected)", n)
			}
		})
	}
}

// TestE2EGatewayAndTransportErrors covers the POP-shaped and malformed
// answers, which do not depend on the business-error modes.
func TestE2EGatewayAndTransportErrors(t *testing.T) {
	w := newWorld(t, emulator.Config{}, 1000)
	c := w.client(t, nil)
	tests := []struct {
		name      string
		fault     emulator.Fault
		call      func(ctx context.Context) error
		wantClass jobs.ErrorClass
		wantCode  string
		wantMsg   string
	}{
		{name: "a 503 on a read is retryable", fault: emulator.Fault{Kind: emulator.FaultHTTP5xx, Action: "DescribeChangeOrder"},
			call: func(ctx context.Context) error { _, err := c.DescribeChangeOrder(ctx, "co"); return err }, wantClass: jobs.ClassRetryable, wantCode: "ServiceUnavailable"},
		{name: "a 500 on a read is retryable", fault: emulator.Fault{Kind: emulator.FaultHTTP5xx, HTTPStatus: 500, Action: "ListChangeOrders"},
			call: func(ctx context.Context) error { _, err := c.ListChangeOrders(ctx, appWeb, -1); return err }, wantClass: jobs.ClassRetryable, wantCode: "InternalError"},
		{name: "an HTML 502 on a read is retryable", fault: emulator.Fault{Kind: emulator.FaultHTML502, Action: "DescribeApplicationGroups"},
			call: func(ctx context.Context) error { _, err := c.ListInstances(ctx, appWeb); return err }, wantClass: jobs.ClassRetryable, wantMsg: "non-JSON"},
		{name: "a numeric Code does not panic and is classified by ErrorCode", fault: emulator.Fault{Kind: emulator.FaultNumericCode, Action: "DescribeApplicationStatus"},
			call: func(ctx context.Context) error { _, err := c.DescribeApplicationStatus(ctx, appWeb); return err }, wantClass: jobs.ClassRetryable, wantCode: "Application.InvalidStatus"},
		{name: "truncated JSON on a read is retryable", fault: emulator.Fault{Kind: emulator.FaultTruncatedJSON, Action: "DescribeApplicationConfig"},
			call: func(ctx context.Context) error { _, err := c.DescribeApplication(ctx, appWeb); return err }, wantClass: jobs.ClassRetryable, wantCode: sae.CodeMalformed},
		{name: "an object where instances belong is a classified error", fault: emulator.Fault{Kind: emulator.FaultObjectForArray, Action: "DescribeApplicationInstances"},
			call: func(ctx context.Context) error { _, err := c.ListInstances(ctx, appWeb); return err }, wantClass: jobs.ClassUnknown, wantCode: sae.CodeMalformed},
		{name: "an object where groups belong is a classified error", fault: emulator.Fault{Kind: emulator.FaultObjectForArray, Action: "DescribeApplicationGroups"},
			call: func(ctx context.Context) error { _, err := c.ListInstances(ctx, appWeb); return err }, wantClass: jobs.ClassUnknown, wantCode: sae.CodeMalformed},
		{name: "a 503 on an abort is ambiguous", fault: emulator.Fault{Kind: emulator.FaultHTTP5xx, Action: "AbortChangeOrder"},
			call: func(ctx context.Context) error { return c.AbortChangeOrder(ctx, "co") }, wantClass: jobs.ClassAmbiguous, wantCode: "ServiceUnavailable"},
		{name: "POP throttling is retryable", fault: emulator.Fault{Kind: emulator.FaultCode, Code: "Throttling.User", Action: "ListApplications"},
			call: func(ctx context.Context) error { _, err := c.ListApplications(ctx, nsProd); return err }, wantClass: jobs.ClassRetryable, wantCode: "Throttling.User"},
		{name: "an expired timestamp reports the host clock", fault: emulator.Fault{Kind: emulator.FaultCode, Code: "InvalidTimeStamp.Expired", Action: "DescribeApplicationStatus"},
			call: func(ctx context.Context) error { _, err := c.DescribeApplicationStatus(ctx, appWeb); return err }, wantClass: jobs.ClassAccount, wantMsg: "host clock off by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.fault
			f.Count = 1
			w.srv.InjectFault(f)
			err := tt.call(ctxT(t))
			var se *jobs.SAEError
			if !errors.As(err, &se) {
				t.Fatalf("error = %v, want a *jobs.SAEError", err)
			}
			if se.Class != tt.wantClass || (tt.wantCode != "" && se.Code != tt.wantCode) {
				t.Errorf("error = %s %q (%v), want %s %q", se.Class, se.Code, err, tt.wantClass, tt.wantCode)
			}
			if tt.wantMsg != "" && !strings.Contains(se.Message, tt.wantMsg) {
				t.Errorf("error message = %q, want it to contain %q", se.Message, tt.wantMsg)
			}
		})
	}
}

func TestE2EAccountErrors(t *testing.T) {
	w := newWorld(t, emulator.Config{}, 1000)
	tests := []struct {
		name     string
		creds    credentials.CredentialsProvider
		wantCode string
	}{
		{name: "an unknown access key", creds: credentials.NewStaticAKCredentialsProvider("LTAI5tNobodyKnowsThis", "x"), wantCode: "InvalidAccessKeyId.NotFound"},
		{name: "a wrong secret", creds: credentials.NewStaticAKCredentialsProvider(ak, "wrong"), wantCode: "SignatureDoesNotMatch"},
		{name: "an STS token with a wrong secret", creds: credentials.NewStaticSTSCredentialsProvider(stsAK, "wrong", stsToken), wantCode: "SignatureDoesNotMatch"},
		{name: "an STS token that is not the key's", creds: credentials.NewStaticSTSCredentialsProvider(stsAK, stsSecret, stsToken+"x"), wantCode: "InvalidSecurityToken.MismatchWithAccessKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := w.client(t, func(cfg *sae.Config) { cfg.Credentials = tt.creds })
			_, err := c.DescribeApplicationStatus(ctxT(t), appWeb)
			if got := jobs.ClassOf(err); got != jobs.ClassAccount || jobs.CodeOf(err) != tt.wantCode {
				t.Errorf("DescribeApplicationStatus() = %v, want account %s", err, tt.wantCode)
			}
		})
	}
	t.Run("a valid STS token works", func(t *testing.T) {
		c := w.client(t, func(cfg *sae.Config) {
			cfg.Credentials = credentials.NewStaticSTSCredentialsProvider(stsAK, stsSecret, stsToken)
		})
		if _, err := c.DescribeApplicationStatus(ctxT(t), appWeb); err != nil {
			t.Errorf("DescribeApplicationStatus() = %v, want nil", err)
		}
	})
}

// TestE2ESTSTokenNeverLeaks: SignatureDoesNotMatch echoes the server's
// string to sign, which carries x-acs-security-token.
func TestE2ESTSTokenNeverLeaks(t *testing.T) {
	w := newWorld(t, emulator.Config{}, 1000)
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := w.client(t, func(cfg *sae.Config) {
		cfg.Credentials = credentials.NewStaticSTSCredentialsProvider(stsAK, "wrong-secret", stsToken)
		cfg.Logger = logger
	})
	ctx := ctxT(t)
	var errs []error
	_, err := c.DescribeApplicationStatus(ctx, appWeb)
	errs = append(errs, err)
	_, err = c.RestartInstances(ctx, appWeb, w.instanceIDs(appWeb, 1))
	errs = append(errs, err)
	for _, err := range errs {
		var se *jobs.SAEError
		if !errors.As(err, &se) || se.Code != "SignatureDoesNotMatch" {
			t.Fatalf("error = %v, want SignatureDoesNotMatch", err)
		}
		if !strings.Contains(se.Message, "server string to sign is:") {
			t.Errorf("error message = %q, want the server's string to sign kept", se.Message)
		}
		for _, text := range []string{err.Error(), fmt.Sprintf("%+v", se), se.Message} {
			if strings.Contains(text, stsToken) || strings.Contains(text, stsToken[:24]) || strings.Contains(text, stsAK) {
				t.Errorf("error text leaks a credential: %q", text)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), stsToken[:24]) || strings.Contains(logs.String(), "wrong-secret") {
		t.Errorf("logs leak a credential: %s", logs.String())
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestE2EAmbiguousSubmit: a submit SAE carried out but whose answer was
// lost must become exactly one change order, and its ID must come back.
func TestE2EAmbiguousSubmit(t *testing.T) {
	tests := []struct {
		name      string
		faults    []emulator.Fault
		timeout   time.Duration
		wantClass jobs.ErrorClass // "" means success
		wantCOs   int
		wantCalls int // RestartInstances calls that reached the emulator
	}{
		{name: "accepted then 503 is found, not resubmitted",
			faults:  []emulator.Fault{{Kind: emulator.FaultAcceptThen5xx, Action: "RestartInstances", Count: 1}},
			wantCOs: 1, wantCalls: 1},
		{name: "accepted then connection dropped is found, not resubmitted",
			faults:  []emulator.Fault{{Kind: emulator.FaultAcceptThenDrop, Action: "RestartInstances", Count: 1}},
			wantCOs: 1, wantCalls: 1},
		{name: "accepted with a truncated answer is found, not resubmitted",
			faults:  []emulator.Fault{{Kind: emulator.FaultTruncatedJSON, Action: "RestartInstances", Count: 1}},
			wantCOs: 1, wantCalls: 1},
		{name: "a timeout before SAE acted is positively absent and resubmitted once",
			faults:  []emulator.Fault{{Kind: emulator.FaultLatency, Latency: 3 * time.Second, Action: "RestartInstances", Count: 1}},
			timeout: 300 * time.Millisecond, wantCOs: 1, wantCalls: 2},
		{name: "an HTML 502 before SAE acted is resubmitted once",
			faults:  []emulator.Fault{{Kind: emulator.FaultHTML502, Action: "RestartInstances", Count: 1}},
			wantCOs: 1, wantCalls: 2},
		{name: "two lost answers without a change order end retryable",
			faults:    []emulator.Fault{{Kind: emulator.FaultHTTP5xx, Action: "RestartInstances", Count: 2}},
			wantClass: jobs.ClassRetryable, wantCOs: 0, wantCalls: 2},
		{name: "accepted then 503 while the lookup fails stays ambiguous",
			faults: []emulator.Fault{
				{Kind: emulator.FaultAcceptThen5xx, Action: "RestartInstances", Count: 1},
				{Kind: emulator.FaultHTTP5xx, Action: "DescribeApplicationStatus"},
			},
			wantClass: jobs.ClassAmbiguous, wantCOs: 1, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, emulator.Config{}, 1000)
			c := w.client(t, func(cfg *sae.Config) {
				if tt.timeout > 0 {
					cfg.Timeout = tt.timeout
				}
			})
			for _, f := range tt.faults {
				w.srv.InjectFault(f)
			}
			ids := w.instanceIDs(appWeb, 2)
			coID, err := c.RestartInstances(ctxT(t), appWeb, ids)
			cos := w.restartCOs(appWeb)
			if len(cos) != tt.wantCOs {
				t.Fatalf("restart change orders = %d, want %d (%+v)", len(cos), tt.wantCOs, cos)
			}
			if got := w.srv.Calls("RestartInstances"); got != tt.wantCalls {
				t.Errorf("RestartInstances calls = %d, want %d", got, tt.wantCalls)
			}
			if tt.wantClass != "" {
				if got := jobs.ClassOf(err); got != tt.wantClass {
					t.Errorf("RestartInstances() = %q, %v, want class %s", coID, err, tt.wantClass)
				}
				return
			}
			if err != nil {
				t.Fatalf("RestartInstances() = %v, want nil", err)
			}
			if coID != cos[0].ID {
				t.Errorf("RestartInstances() = %q, want the change order SAE created, %q", coID, cos[0].ID)
			}
		})
	}
}

// TestE2EThrottlingBacksOffTheAccount: a Throttling.User answer carries
// x-acs-retry-after; the error keeps it and the shared bucket pauses.
func TestE2EThrottlingBacksOffTheAccount(t *testing.T) {
	w := newWorld(t, emulator.Config{QuotaPerMinute: 2}, 1)
	var waited atomic.Int64
	lim := sae.NewLimiter(6000, 100, w.clk, func(d time.Duration) { waited.Add(int64(d)) })
	c := w.client(t, func(cfg *sae.Config) { cfg.Limiter = lim })
	ctx := ctxT(t)
	for i := range 2 {
		if _, err := c.DescribeApplicationStatus(ctx, appWeb); err != nil {
			t.Fatalf("call %d = %v, want nil", i, err)
		}
	}
	_, err := c.DescribeApplicationStatus(ctx, appWeb)
	var se *jobs.SAEError
	if !errors.As(err, &se) || se.Class != jobs.ClassRetryable || se.Code != "Throttling.User" {
		t.Fatalf("third call = %v, want retryable Throttling.User", err)
	}
	if se.RetryAfter <= 0 || se.RetryAfter > time.Minute {
		t.Errorf("RetryAfter = %v, want the server's hint in (0, 1m]", se.RetryAfter)
	}
	// The next caller of the account waits for the pause (cancelled here).
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.DescribeApplicationStatus(short, appWeb); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("call during the pause = %v, want context.DeadlineExceeded", err)
	}
	if waited.Load() == 0 {
		t.Errorf("limiter waits = 0, want the throttling pause counted")
	}
	if got := w.srv.Calls("DescribeApplicationStatus"); got != 3 {
		t.Errorf("calls reaching SAE = %d, want 3 (none during the pause)", got)
	}
}

// TestE2EQuotaSharedAcrossClients: two regions' clients of one account
// draw from one bucket: 3 burst, then one call per 2 emulated seconds.
func TestE2EQuotaSharedAcrossClients(t *testing.T) {
	w := newWorld(t, emulator.Config{}, 100)
	var waits atomic.Int64
	lim := sae.NewLimiter(30, 3, w.clk, func(time.Duration) { waits.Add(1) })
	a := w.client(t, func(cfg *sae.Config) { cfg.Limiter = lim })
	b := w.client(t, func(cfg *sae.Config) { cfg.Limiter = lim; cfg.Region = "cn-shanghai" })
	ctx := ctxT(t)
	start := w.clk.Now()
	for i := range 6 {
		c := a
		if i%2 == 1 {
			c = b
		}
		if _, err := c.DescribeApplicationStatus(ctx, appWeb); err != nil {
			t.Fatalf("call %d = %v", i, err)
		}
	}
	if got := waits.Load(); got != 3 {
		t.Errorf("waits = %d, want 3 (the calls past the burst)", got)
	}
	if el := w.clk.Now().Sub(start); el < 5*time.Second {
		t.Errorf("6 calls took %v emulated, want >= 6s (3 burst + 3 at 2s)", el)
	}
}

// TestE2EConcurrentCalls proves the client safe for concurrent use (run
// with -race): many goroutines share one client, its pool of SDK clients
// and its bucket; the OnRequest hook sees every HTTP call.
func TestE2EConcurrentCalls(t *testing.T) {
	w := newWorld(t, emulator.Config{}, 1000)
	var hookCalls atomic.Int64
	var codesMu sync.Mutex
	codes := map[string]int{}
	c := w.client(t, func(cfg *sae.Config) {
		cfg.PoolSize = 3
		cfg.OnRequest = func(action, code string, d time.Duration) {
			hookCalls.Add(1)
			codesMu.Lock()
			codes[code]++
			codesMu.Unlock()
		}
	})
	ctx := ctxT(t)
	coID, err := c.RestartInstances(ctx, appWeb, w.instanceIDs(appWeb, 1))
	if err != nil {
		t.Fatalf("RestartInstances() = %v", err)
	}
	const workers, rounds = 12, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*3)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if _, err := c.DescribeChangeOrder(ctx, coID); err != nil {
					errs <- err
				}
				if _, err := c.DescribeApplicationStatus(ctx, appWeb); err != nil {
					errs <- err
				}
				if i%3 == 0 {
					if _, err := c.ListInstances(ctx, appBusy); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent call = %v, want nil", err)
	}
	total := 0
	for _, a := range []string{"RestartInstances", "DescribeChangeOrder", "DescribeApplicationStatus", "DescribeApplicationGroups", "DescribeApplicationInstances"} {
		total += w.srv.Calls(a)
	}
	if got := hookCalls.Load(); got != int64(total) {
		t.Errorf("OnRequest calls = %d, want %d (one per HTTP call)", got, total)
	}
	codesMu.Lock()
	defer codesMu.Unlock()
	if codes["200"] != total {
		t.Errorf("OnRequest codes = %v, want %d × 200", codes, total)
	}
}

func TestE2ECancelledContext(t *testing.T) {
	w := newWorld(t, emulator.Config{}, 1000)
	c := w.client(t, nil)
	w.srv.InjectFault(emulator.Fault{Kind: emulator.FaultLatency, Latency: 3 * time.Second, Action: "DescribeApplicationStatus", Count: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.DescribeApplicationStatus(ctx, appWeb)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DescribeApplicationStatus() = %v, want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("DescribeApplicationStatus() returned after %v, want soon after the context ended", el)
	}
}

// TestE2EChangeOrderOutcomes decodes the change-order states the engine
// acts on: success, failure, stuck with SubStatus 1, waiting for a human.
func TestE2EChangeOrderOutcomes(t *testing.T) {
	tests := []struct {
		name          string
		fault         emulator.FaultKind
		wantStatus    int
		wantSubStatus int
		wantAppSub    string // DescribeApplicationStatus.SubStatus while it lasts
	}{
		{name: "a clean restart succeeds", wantStatus: jobs.COSucceeded},
		{name: "a failed batch ends status 3", fault: emulator.FaultCOFail, wantStatus: jobs.COFailed},
		{name: "a system failure ends status 10", fault: emulator.FaultCOSystemFail, wantStatus: jobs.COSystemFailed},
		{name: "a stuck batch stays running with SubStatus 1", fault: emulator.FaultCOStuckSubStatus, wantStatus: jobs.CORunning, wantSubStatus: 1, wantAppSub: "RUNNING_BUT_HAS_ERROR"},
		{name: "a manual batch waits in status 8", fault: emulator.FaultCOWaitConfirm, wantStatus: jobs.COWaitConfirm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apps := []emulator.AppSpec{{AppID: appWeb, AppName: "web", NamespaceID: nsProd, Instances: 2, RestartTime: 30 * time.Second}}
			if tt.fault != "" {
				apps[0].Faults = []emulator.Fault{{Kind: tt.fault}}
			}
			w := newWorld(t, emulator.Config{Apps: apps}, 1000)
			c := w.client(t, nil)
			ctx := ctxT(t)
			coID, err := c.RestartInstances(ctx, appWeb, w.instanceIDs(appWeb, 2))
			if err != nil {
				t.Fatalf("RestartInstances() = %v", err)
			}
			var co jobs.ChangeOrder
			// Poll as the engine would, in emulated time (10 s apart).
			for range 100 {
				if co, err = c.DescribeChangeOrder(ctx, coID); err != nil {
					t.Fatalf("DescribeChangeOrder() = %v", err)
				}
				if co.Status == tt.wantStatus && co.SubStatus == tt.wantSubStatus {
					break
				}
				if err := w.clk.Sleep(ctx, 10*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			if co.Status != tt.wantStatus || co.SubStatus != tt.wantSubStatus {
				t.Fatalf("DescribeChangeOrder() = status %d/%d, want %d/%d", co.Status, co.SubStatus, tt.wantStatus, tt.wantSubStatus)
			}
			switch terminal := co.Status == jobs.COSucceeded || co.Status == jobs.COFailed || co.Status == jobs.COSystemFailed; {
			case terminal && !co.FinishTime.After(co.CreateTime):
				t.Errorf("DescribeChangeOrder() FinishTime = %v, want after CreateTime %v", co.FinishTime, co.CreateTime)
			case !terminal && !co.FinishTime.IsZero():
				t.Errorf("DescribeChangeOrder() FinishTime = %v, want zero while not ended", co.FinishTime)
			}
			st, err := c.DescribeApplicationStatus(ctx, appWeb)
			if err != nil || st.LastChangeOrderID != coID {
				t.Fatalf("DescribeApplicationStatus() = %+v, %v, want last change order %s", st, err, coID)
			}
			if tt.wantAppSub != "" && st.SubStatus != tt.wantAppSub {
				t.Errorf("DescribeApplicationStatus().SubStatus = %q, want %q", st.SubStatus, tt.wantAppSub)
			}
			if co.Status == jobs.CORunning || co.Status == jobs.COWaitConfirm {
				// Our own stuck change order: abort it, as on_stuck: abort does.
				if err := c.AbortChangeOrder(ctx, coID); err != nil {
					t.Fatalf("AbortChangeOrder() = %v", err)
				}
				if co, err = c.DescribeChangeOrder(ctx, coID); err != nil || co.Status != jobs.COAborted {
					t.Errorf("DescribeChangeOrder() after abort = %d, %v, want 6", co.Status, err)
				}
			}
		})
	}
}

// TestE2EResubmitMeetsTheLock: a submit that timed out before SAE acted is
// resubmitted once; if meanwhile a deploy took the lock, the lock error
// comes back (after one more lookup), and nothing was restarted.
func TestE2EResubmitMeetsTheLock(t *testing.T) {
	apps := []emulator.AppSpec{{AppID: appWeb, AppName: "web", NamespaceID: nsProd, Instances: 2, RestartTime: time.Hour,
		Deploys: []emulator.ForeignChangeOrder{{After: 100 * time.Second, Duration: 24 * time.Hour}}}}
	w := newWorld(t, emulator.Config{Apps: apps}, 1000)
	w.srv.InjectFault(emulator.Fault{Kind: emulator.FaultLatency, Latency: 3 * time.Second, Action: "RestartInstances", Count: 1})
	c := w.client(t, func(cfg *sae.Config) { cfg.Timeout = 300 * time.Millisecond })
	_, err := c.RestartInstances(ctxT(t), appWeb, w.instanceIDs(appWeb, 1))
	if got := jobs.ClassOf(err); got != jobs.ClassLock {
		t.Fatalf("RestartInstances() = %v, want class lock", err)
	}
	if n := len(w.restartCOs(appWeb)); n != 0 {
		t.Errorf("restart change orders = %d, want 0", n)
	}
	if got := w.srv.Calls("RestartInstances"); got != 2 {
		t.Errorf("RestartInstances calls = %d, want 2 (one resubmit)", got)
	}
}

func TestE2EListApplicationsPages(t *testing.T) {
	var apps []emulator.AppSpec
	for i := range 150 {
		apps = append(apps, emulator.AppSpec{AppID: fmt.Sprintf("app-%03d", i), NamespaceID: nsProd, Instances: 1})
	}
	apps = append(apps, emulator.AppSpec{AppID: "elsewhere", NamespaceID: "cn-hangzhou:dev", Instances: 1})
	w := newWorld(t, emulator.Config{Apps: apps}, 1000)
	c := w.client(t, nil)
	got, err := c.ListApplications(ctxT(t), nsProd)
	if err != nil {
		t.Fatalf("ListApplications() = %v", err)
	}
	if len(got) != 150 || got[0].ID != "app-000" || got[149].ID != "app-149" {
		t.Errorf("ListApplications() = %d apps (%v … ), want app-000 … app-149", len(got), got[:min(2, len(got))])
	}
	if calls := w.srv.Calls("ListApplications"); calls != 2 {
		t.Errorf("ListApplications calls = %d, want 2 (pages of 100)", calls)
	}
	all, err := c.ListApplications(ctxT(t), "")
	if err != nil || len(all) != 151 {
		t.Errorf("ListApplications(all namespaces) = %d apps, %v, want 151", len(all), err)
	}
}

// TestE2ECancelledSubmitIsAmbiguous: a context that ends while SAE holds the
// submit cannot tell whether SAE acted: ambiguous, yet still a context error.
func TestE2ECancelledSubmitIsAmbiguous(t *testing.T) {
	w := newWorld(t, emulator.Config{}, 1000)
	c := w.client(t, nil)
	w.srv.InjectFault(emulator.Fault{Kind: emulator.FaultLatency, Latency: 3 * time.Second, Action: "RestartInstances", Count: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.RestartInstances(ctx, appWeb, w.instanceIDs(appWeb, 1))
	if jobs.ClassOf(err) != jobs.ClassAmbiguous || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("RestartInstances() = %v, want ambiguous wrapping context.DeadlineExceeded", err)
	}
	if got := w.srv.Calls("RestartInstances"); got != 1 {
		t.Errorf("RestartInstances calls = %d, want 1 (no resubmit after the context ended)", got)
	}
}
