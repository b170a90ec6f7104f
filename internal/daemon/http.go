package daemon

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// History sizes of GET /api/v1/runs (?n=): the default and the largest.
const (
	DefaultHistory = 20
	MaxHistory     = 1000
)

// Handler returns the daemon's HTTP surface.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.opts.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case d.drainingA.Load():
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		case !d.ready.Load():
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
		default:
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		}
	})
	mux.HandleFunc("GET /api/v1/schedules", func(w http.ResponseWriter, r *http.Request) {
		n := 5
		if s := r.URL.Query().Get("n"); s != "" {
			if v, err := strconv.Atoi(s); err == nil && v > 0 && v <= 100 {
				n = v
			}
		}
		writeJSON(w, http.StatusOK, d.schedules(n))
	})
	mux.HandleFunc("GET /api/v1/runs", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n := DefaultHistory
		if s := q.Get("n"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 || v > MaxHistory {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("n must be an integer from 1 to %d", MaxHistory))
				return
			}
			n = v
		}
		runs, err := d.History(r.Context(), q.Get("schedule"), n)
		if err != nil {
			d.log.Error("GET /api/v1/runs: reading the journal", "err", err)
			writeError(w, http.StatusInternalServerError, "the journal cannot be read")
			return
		}
		writeJSON(w, http.StatusOK, runs)
	})
	mux.HandleFunc("GET /api/v1/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		ar := d.runs[r.PathValue("id")]
		var body any
		if ar != nil {
			cp := *ar
			body = &cp
		}
		d.mu.Unlock()
		if ar == nil {
			writeError(w, http.StatusNotFound, "no such run")
			return
		}
		writeJSON(w, http.StatusOK, body)
	})
	mux.Handle("POST /-/reload", d.authorized(func(w http.ResponseWriter, r *http.Request) {
		if err := d.Reload(); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
	}))
	mux.Handle("POST /api/v1/schedules/{name}/trigger", d.authorized(func(w http.ResponseWriter, r *http.Request) {
		id, err := d.Trigger(r.PathValue("name"))
		switch {
		case errors.Is(err, errNotFound):
			writeError(w, http.StatusNotFound, "no such schedule")
		case errors.Is(err, errRunning):
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error(), "run_id": id})
		case err != nil:
			writeError(w, http.StatusServiceUnavailable, err.Error())
		default:
			writeJSON(w, http.StatusAccepted, map[string]string{"run_id": id})
		}
	}))
	mux.Handle("POST /api/v1/runs/{id}/cancel", d.authorized(func(w http.ResponseWriter, r *http.Request) {
		if err := d.Cancel(r.PathValue("id")); err != nil {
			writeError(w, http.StatusNotFound, "no such run in progress")
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "cancelling: no new batch starts"})
	}))
	return mux
}

// authorized requires Authorization: Bearer <SCHEDULER_API_TOKEN>. Without a
// configured token every mutation is refused: an open mutation endpoint on a
// daemon that restarts production is not a default anyone wants.
func (d *Daemon) authorized(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.opts.APIToken == "" {
			writeError(w, http.StatusForbidden, "mutations are disabled: set SCHEDULER_API_TOKEN")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(d.opts.APIToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sae-scheduler"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
