package daemon

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func post(t *testing.T, h http.Handler, path, authorization string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	h.ServeHTTP(rec, req)
	return rec
}

func TestEveryPOSTRequiresTheToken(t *testing.T) {
	posts := []string{"/-/reload", "/api/v1/schedules/web/trigger", "/api/v1/runs/web.20260301T030010Z/cancel"}
	tests := []struct {
		name          string
		token         string // SCHEDULER_API_TOKEN
		authorization string
		wantCode      int
	}{
		{name: "without SCHEDULER_API_TOKEN every POST is forbidden", token: "", authorization: "Bearer anything", wantCode: http.StatusForbidden},
		{name: "without SCHEDULER_API_TOKEN an empty bearer is forbidden", token: "", authorization: "Bearer ", wantCode: http.StatusForbidden},
		{name: "a missing Authorization is unauthorized", token: "s3cret", authorization: "", wantCode: http.StatusUnauthorized},
		{name: "a wrong token is unauthorized", token: "s3cret", authorization: "Bearer s3creT", wantCode: http.StatusUnauthorized},
		{name: "a token that only starts right is unauthorized", token: "s3cret", authorization: "Bearer s3cret2", wantCode: http.StatusUnauthorized},
		{name: "another scheme is unauthorized", token: "s3cret", authorization: "Basic czNjcmV0", wantCode: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		for _, path := range posts {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				h := newHarness(t, every10s(""), harnessOpts{token: tt.token})
				rec := post(t, h.d.Handler(), path, tt.authorization)
				if rec.Code != tt.wantCode {
					t.Errorf("POST %s = %d %s, want %d", path, rec.Code, rec.Body.String(), tt.wantCode)
				}
				if got := h.sae.calls; got != 0 {
					t.Errorf("SAE calls after a refused POST = %d, want 0", got)
				}
			})
		}
	}
}

func TestPOSTWithTheRightToken(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		setup    func(t *testing.T, h *harness)
		wantCode int
		wantBody string
	}{
		{name: "reload of a valid file answers 200", path: "/-/reload", wantCode: http.StatusOK, wantBody: `"reloaded"`},
		{
			name: "reload of a broken file answers 400 with file:line",
			path: "/-/reload",
			setup: func(t *testing.T, h *harness) {
				writeFile(t, h.path, "sae:\n  region: cn-hangzhou\nschedules:\n  - name: web\n    crom: \"* * * * *\"\n")
			},
			wantCode: http.StatusBadRequest, wantBody: `schedules.yaml:5: schedules[0].crom: `,
		},
		{name: "trigger of a schedule answers 202 with the run ID", path: "/api/v1/schedules/web/trigger", wantCode: http.StatusAccepted, wantBody: `"run_id": "web.20260301T030000Z.manual"`},
		{name: "trigger of an unknown schedule answers 404", path: "/api/v1/schedules/nope/trigger", wantCode: http.StatusNotFound},
		{
			name:     "trigger while a run is in progress answers 409 with its ID",
			path:     "/api/v1/schedules/web/trigger",
			setup:    func(t *testing.T, h *harness) { h.fireAt("web", t0.Add(10*time.Second)); <-h.sae.started },
			wantCode: http.StatusConflict, wantBody: `"run_id": "web.20260301T030010Z"`,
		},
		{
			name:     "cancel of a run in progress answers 202",
			path:     "/api/v1/runs/web.20260301T030010Z/cancel",
			setup:    func(t *testing.T, h *harness) { h.fireAt("web", t0.Add(10*time.Second)); <-h.sae.started },
			wantCode: http.StatusAccepted,
		},
		{name: "cancel of an unknown run answers 404", path: "/api/v1/runs/nope/cancel", wantCode: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, every10s("    window: 1h\n"), harnessOpts{token: "s3cret", hold: true})
			if tt.setup != nil {
				tt.setup(t, h)
			}
			rec := post(t, h.d.Handler(), tt.path, "Bearer s3cret")
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("POST %s = %d %s, want %d with %s", tt.path, rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
		})
	}
}

func TestCancelStopsTheRun(t *testing.T) {
	h := newHarness(t, every10s("    window: 1h\n"), harnessOpts{token: "s3cret", hold: true})
	h.fireAt("web", t0.Add(10*time.Second))
	<-h.sae.started
	if rec := post(t, h.d.Handler(), "/api/v1/runs/web.20260301T030010Z/cancel", "Bearer s3cret"); rec.Code != http.StatusAccepted {
		t.Fatalf("POST cancel = %d, want 202", rec.Code)
	}
	<-h.sae.cancelled
	close(h.sae.release)
	h.waitOutcome(t)
	h.d.wg.Wait()
	rec := get(t, h.d.Handler(), "/api/v1/runs/web.20260301T030010Z")
	var run struct {
		ID      string `json:"id"`
		Outcome *struct {
			Result string `json:"result"`
		} `json:"outcome"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &run); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("GET run = %d %s (%v), want 200 JSON", rec.Code, rec.Body.String(), err)
	}
	if run.Outcome == nil {
		t.Fatalf("GET run = %s, want an outcome", rec.Body.String())
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name     string
		ready    bool
		draining bool
		wantCode int
		wantBody string
	}{
		{name: "before Start it is not ready", wantCode: http.StatusServiceUnavailable, wantBody: `"starting"`},
		{name: "once started it is ready", ready: true, wantCode: http.StatusOK, wantBody: `"ready"`},
		{name: "while draining it is not ready", ready: true, draining: true, wantCode: http.StatusServiceUnavailable, wantBody: `"draining"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, every10s(""), harnessOpts{})
			h.d.ready.Store(tt.ready)
			h.d.drainingA.Store(tt.draining)
			rec := get(t, h.d.Handler(), "/readyz")
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("GET /readyz = %d %s, want %d %s", rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
			if rec := get(t, h.d.Handler(), "/healthz"); rec.Code != http.StatusOK {
				t.Errorf("GET /healthz = %d, want 200", rec.Code)
			}
		})
	}
}

func TestSchedulesJSON(t *testing.T) {
	yaml := `sae:
  region: cn-hangzhou
defaults:
  timezone: Asia/Shanghai
schedules:
  - name: web
    cron: "*/10 * * * * *"
    window: 1h
    labels: {team: web}
    apps:
      - app_id: app-1
  - name: nightly
    cron: "0 3 * * *"
    suspend: true
    apps:
      - app_id: app-2
`
	h := newHarness(t, yaml, harnessOpts{hold: true})
	h.fireAt("web", t0.Add(10*time.Second))
	<-h.sae.started
	rec := get(t, h.d.Handler(), "/api/v1/schedules?n=2")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/schedules = %d, want 200", rec.Code)
	}
	var got []scheduleView
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("GET /api/v1/schedules body %s: %v", rec.Body.String(), err)
	}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	want := []scheduleView{
		{Name: "nightly", Cron: "0 3 * * *", Timezone: "Asia/Shanghai", Suspended: true,
			Next: []time.Time{time.Date(2026, 3, 2, 3, 0, 0, 0, shanghai), time.Date(2026, 3, 3, 3, 0, 0, 0, shanghai)}, LastScheduled: t0},
		{Name: "web", Cron: "*/10 * * * * *", Timezone: "Asia/Shanghai", Labels: map[string]string{"team": "web"},
			Next: []time.Time{t0.Add(20 * time.Second), t0.Add(30 * time.Second)}, LastScheduled: t0.Add(10 * time.Second),
			InProgress: true, RunID: "web.20260301T030010Z"},
	}
	if len(got) != len(want) {
		t.Fatalf("GET /api/v1/schedules = %d schedules, want %d: %s", len(got), len(want), rec.Body.String())
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Cron != w.Cron || g.Timezone != w.Timezone || g.Suspended != w.Suspended ||
			g.InProgress != w.InProgress || g.RunID != w.RunID || !g.LastScheduled.Equal(w.LastScheduled) ||
			g.Labels["team"] != w.Labels["team"] || !strings.HasPrefix(g.Source, h.path+":") {
			t.Errorf("schedule %d = %+v, want %+v", i, g, w)
		}
		if len(g.Next) != len(w.Next) {
			t.Errorf("schedule %s next = %v, want %v", g.Name, g.Next, w.Next)
			continue
		}
		for j := range w.Next {
			if !g.Next[j].Equal(w.Next[j]) {
				t.Errorf("schedule %s next[%d] = %s, want %s", g.Name, j, g.Next[j], w.Next[j])
			}
		}
	}
}

func TestGetRunUnknownIs404(t *testing.T) {
	h := newHarness(t, every10s(""), harnessOpts{})
	if rec := get(t, h.d.Handler(), "/api/v1/runs/nope"); rec.Code != http.StatusNotFound {
		t.Errorf("GET /api/v1/runs/nope = %d, want 404", rec.Code)
	}
}

func TestMetricsAreServed(t *testing.T) {
	h := newHarness(t, every10s(""), harnessOpts{})
	rec := get(t, h.d.Handler(), "/metrics")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `sae_scheduler_runs_total{result="success",schedule="web"} 0`) {
		t.Errorf("GET /metrics = %d, want 200 with runs_total of web at 0", rec.Code)
	}
}
