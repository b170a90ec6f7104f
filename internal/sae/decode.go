package sae

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// The SDK decodes with fuzzy converters (numbers and strings both ways); SAE
// and its documentation disagree on some types ("Code":200 vs "200",
// CreateTime as text or epoch-ms). These types accept either, so only a
// wrong shape (an object where an array belongs) is an error.

// fstr accepts a JSON string, number, bool or null.
type fstr string

func (s *fstr) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*s = ""
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = fstr(v)
	case b[0] == '{' || b[0] == '[':
		return fmt.Errorf("want a string, got %.20s", b)
	default:
		*s = fstr(b)
	}
	return nil
}

// fint accepts a JSON number, a numeric string, "" or null.
type fint int64

func (n *fint) UnmarshalJSON(b []byte) error {
	var s fstr
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	v := strings.TrimSpace(string(s))
	if v == "" {
		*n = 0
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return fmt.Errorf("want a number, got %q", truncate(v, 20))
	}
	*n = fint(f)
	return nil
}

// fbool accepts true/false, "true"/"false", 1/0, "" or null.
type fbool bool

func (v *fbool) UnmarshalJSON(b []byte) error {
	var s fstr
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(string(s))) {
	case "true", "1":
		*v = true
	case "false", "0", "":
		*v = false
	default:
		return fmt.Errorf("want a bool, got %q", truncate(string(s), 20))
	}
	return nil
}

// page is the pagination part of a list answer.
type page struct {
	CurrentPage fint
	PageSize    fint
	TotalSize   fint
}

// decodeData decodes the envelope's Data into v. A missing or null Data, or
// a wrong shape, gives a CodeMalformed error: ClassAmbiguous for a mutating
// action (SAE said it succeeded but we cannot read what it did), else
// ClassUnknown.
func decodeData(action string, body []byte, v any) error {
	var env struct{ Data json.RawMessage }
	if err := json.Unmarshal(body, &env); err != nil {
		return malformed(action, err)
	}
	d := bytes.TrimSpace(env.Data)
	if len(d) == 0 || string(d) == "null" {
		return malformed(action, fmt.Errorf("no Data"))
	}
	if err := json.Unmarshal(d, v); err != nil {
		return malformed(action, err)
	}
	return nil
}

// decodeTop decodes the whole body into v (for page fields outside Data).
func decodeTop(action string, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return malformed(action, err)
	}
	return nil
}

func malformed(action string, err error) error {
	class := jobs.ClassUnknown
	if isMutating(action) {
		class = jobs.ClassAmbiguous
	}
	return &jobs.SAEError{
		Class:      class,
		Action:     action,
		Code:       CodeMalformed,
		HTTPStatus: 200,
		Message:    "unexpected response shape: " + Redact(truncate(err.Error(), 300)),
	}
}

// coTimeLayouts are the text forms SAE uses for change-order times.
var coTimeLayouts = []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006/01/02 15:04:05"}

// parseCOTimes parses a change order's CreateTime. A zone-less text time is
// returned in each of locs (so the caller can try every interpretation);
// epoch numbers (ms, or s when small) and RFC 3339 give one instant.
// ok is false for an empty or unparseable value.
func parseCOTimes(v string, locs ...*time.Location) (ts []time.Time, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 1e11 { // seconds
			return []time.Time{time.Unix(n, 0)}, true
		}
		return []time.Time{time.UnixMilli(n)}, true
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return []time.Time{t}, true
	}
	for _, layout := range coTimeLayouts {
		for _, loc := range locs {
			if t, err := time.ParseInLocation(layout, v, loc); err == nil {
				ts = append(ts, t)
			}
		}
		if len(ts) > 0 {
			return ts, true
		}
	}
	return nil, false
}
