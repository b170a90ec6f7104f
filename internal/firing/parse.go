package firing

import (
	"errors"
	"fmt"
	"strings"

	"github.com/robfig/cron/v3"
)

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse parses a 5-field (or 6-field, seconds first) cron expression or a
// descriptor (@daily, @every 10m). A CRON_TZ= or TZ= prefix is an error: the
// zone belongs in the schedule's timezone key.
func Parse(expr string) (cron.Schedule, error) {
	e := strings.TrimSpace(expr)
	if e == "" {
		return nil, errors.New("empty cron expression")
	}
	if strings.HasPrefix(e, "CRON_TZ=") || strings.HasPrefix(e, "TZ=") {
		return nil, errors.New("a CRON_TZ=/TZ= prefix is not allowed: set the schedule's timezone instead")
	}
	s, err := parser.Parse(e)
	if err != nil {
		return nil, fmt.Errorf("bad cron expression %q: %v", expr, err)
	}
	return s, nil
}
