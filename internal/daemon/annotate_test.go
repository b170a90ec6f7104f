package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGrafanaAnnotationsOfARun: with a grafana block, a run's start and end
// reach Grafana's annotation API with the token from the named environment
// variable, and the token never reaches the log.
func TestGrafanaAnnotationsOfARun(t *testing.T) {
	const token = "tok-grafana-123"
	t.Setenv("TEST_GRAFANA_TOKEN", token)
	type post struct {
		auth string
		tags []string
	}
	posts := make(chan post, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var a struct{ Tags []string }
		_ = json.Unmarshal(body, &a)
		if r.Method == http.MethodPost && r.URL.Path == "/api/annotations" {
			posts <- post{auth: r.Header.Get("Authorization"), tags: a.Tags}
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	h := newHarness(t, dailyAt2("grafana:\n  url: "+srv.URL+"\n  token_env: TEST_GRAFANA_TOKEN\n"), harnessOpts{})
	h.fireAt("web", time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)) // the first 02:00 after t0
	h.waitOutcome(t)

	var got []post
	deadline := time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case p := <-posts:
			got = append(got, p)
		case <-deadline:
			t.Fatalf("annotations received = %+v, want a start and an end", got)
		}
	}
	for _, p := range got {
		if p.auth != "Bearer "+token {
			t.Errorf("Authorization = %q, want the token from TEST_GRAFANA_TOKEN", p.auth)
		}
		if !slices.Contains(p.tags, "sae-scheduler") || !slices.Contains(p.tags, "web") {
			t.Errorf("tags = %v, want sae-scheduler and the schedule", p.tags)
		}
	}
	if !slices.Contains(got[0].tags, "started") {
		t.Errorf("first annotation tags = %v, want the run's start", got[0].tags)
	}
	if strings.Contains(h.logs.String(), token) {
		t.Errorf("the Grafana token appears in the log")
	}
}
