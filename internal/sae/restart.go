package sae

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

var errNoChangeOrderID = errors.New("no ChangeOrderId in a successful answer")

const (
	// lookupAttempts bounds how often one ambiguous submit's lookup is tried
	// when its reads fail with a retryable error.
	lookupAttempts = 3
	// maxCandidates bounds the DescribeChangeOrder calls of one lookup.
	maxCandidates = 8
)

// RestartInstances submits one restart change order for instanceIDs and
// returns its ID. It is never retried blindly. When the outcome of a submit
// is ambiguous (timeout, 5xx, connection lost after sending, an unreadable
// 2xx), it looks for the change order the submit may have created
// (FindRestartChangeOrder, its reads retried up to 3 times with Backoff):
// found, it returns that change order's ID; positively absent, it submits
// once more under the same rule; unable to tell, it returns an error of
// class ClassAmbiguous. If the second submit is ambiguous too and nothing is
// found, the error is ClassRetryable (SAE positively has no such change
// order). If the second submit meets the change-order lock, the lookup runs
// once more, since the first submit's change order may have surfaced late.
// Other errors wrap *jobs.SAEError unchanged (lock, stale_instances, ...),
// or are ctx.Err() when ctx ended before the request was sent; when it ends
// after, the error is ClassAmbiguous and errors.Is(err, ctx.Err()) holds.
func (c *Client) RestartInstances(ctx context.Context, appID string, instanceIDs []string) (string, error) {
	const action = "RestartInstances"
	if appID == "" {
		return "", invalid(action, "empty app id")
	}
	if len(instanceIDs) == 0 {
		return "", invalid(action, "no instance ids")
	}
	for _, id := range instanceIDs {
		if id == "" || strings.Contains(id, ",") {
			return "", invalid(action, fmt.Sprintf("bad instance id %q", id))
		}
	}
	first := c.clk.Now()
	var lastErr error
	for attempt := 1; attempt <= 2; attempt++ {
		id, err := c.restartOnce(ctx, appID, instanceIDs)
		if err == nil {
			return id, nil
		}
		lastErr = err
		class := jobs.ClassOf(err)
		if attempt == 2 && class == jobs.ClassLock {
			if co, found, ferr := c.resolve(ctx, appID, instanceIDs, first); ferr == nil && found {
				return co.ID, nil
			}
			return "", err
		}
		if class != jobs.ClassAmbiguous {
			return "", err
		}
		c.log.Warn("sae restart outcome ambiguous; looking for its change order",
			"app", appID, "instances", len(instanceIDs), "attempt", attempt, "err", err)
		// The window starts at the first submit: a late change order of
		// that submit must be found after the second one too.
		co, found, ferr := c.resolve(ctx, appID, instanceIDs, first)
		if ferr != nil {
			return "", &jobs.SAEError{Class: jobs.ClassAmbiguous, Action: action, Code: jobs.CodeOf(err),
				Message: "submit outcome unknown and the lookup failed",
				Err:     fmt.Errorf("%w; lookup: %w", err, ferr)}
		}
		if found {
			c.log.Info("sae ambiguous restart resolved: change order found", "app", appID, "change_order", co.ID)
			return co.ID, nil
		}
		c.log.Warn("sae ambiguous restart resolved: no change order; resubmitting", "app", appID, "attempt", attempt)
	}
	return "", &jobs.SAEError{Class: jobs.ClassRetryable, Action: action, Code: jobs.CodeOf(lastErr),
		Message: "two ambiguous submits created no change order", Err: lastErr}
}

// resolve runs FindRestartChangeOrder, retrying retryable failures of its
// reads with Backoff on the clock.
func (c *Client) resolve(ctx context.Context, appID string, ids []string, notBefore time.Time) (jobs.ChangeOrder, bool, error) {
	var err error
	for n := 1; n <= lookupAttempts; n++ {
		var co jobs.ChangeOrder
		var found bool
		co, found, err = c.FindRestartChangeOrder(ctx, appID, ids, notBefore)
		if err == nil || jobs.ClassOf(err) != jobs.ClassRetryable || n == lookupAttempts {
			return co, found, err
		}
		if serr := c.clk.Sleep(ctx, c.backoff(n)); serr != nil {
			return jobs.ChangeOrder{}, false, serr
		}
	}
	return jobs.ChangeOrder{}, false, err
}

// FindRestartChangeOrder looks for a CoRestartInstances change order of the
// app whose targets are exactly instanceIDs (as a set) and whose CreateTime
// lies in [notBefore-MatchSlack, now+MatchSlack] read in COTimeLocation or in
// UTC. It checks DescribeApplicationStatus.LastChangeOrderId first, then the
// recent ListChangeOrders(CoType=CoRestartInstances) items in that window
// (the first page and, for a long history, the last one, since SAE's order
// is undocumented), describing each since list items carry no targets.
//
// found=false with err=nil means SAE positively has no such change order.
// A candidate whose CreateTime cannot be read, or more candidates than it
// may describe, give an error of class ClassAmbiguous; a failed read gives
// that read's error; ctx ending gives ctx.Err().
func (c *Client) FindRestartChangeOrder(ctx context.Context, appID string, instanceIDs []string, notBefore time.Time) (jobs.ChangeOrder, bool, error) {
	const action = "FindRestartChangeOrder"
	want := map[string]bool{}
	for _, id := range instanceIDs {
		want[id] = true
	}
	st, err := c.DescribeApplicationStatus(ctx, appID)
	if err != nil {
		return jobs.ChangeOrder{}, false, err
	}
	checked := map[string]bool{}
	if id := st.LastChangeOrderID; id != "" {
		checked[id] = true
		co, raw, err := c.describeCO(ctx, id)
		switch {
		case jobs.CodeOf(err) == "InvalidChangeOrder.NotFound":
			// An expired last change order is not ours.
		case err != nil:
			return jobs.ChangeOrder{}, false, err
		default:
			ok, known := c.matches(co, raw, appID, want, notBefore)
			if ok {
				return co, true, nil
			}
			if !known {
				return jobs.ChangeOrder{}, false, cannotTell(action, "last change order "+id+" has an unreadable CreateTime")
			}
		}
	}

	items, total, err := c.listChangeOrdersPage(ctx, appID, CoRestartInstances, -1, 1, coPageSize)
	if err != nil {
		return jobs.ChangeOrder{}, false, err
	}
	if last := (total + coPageSize - 1) / coPageSize; total > len(items) && last > 1 {
		more, _, err := c.listChangeOrdersPage(ctx, appID, CoRestartInstances, -1, last, coPageSize)
		if err != nil {
			return jobs.ChangeOrder{}, false, err
		}
		items = append(items, more...)
	}
	now := c.clk.Now()
	var candidates []string
	for _, it := range items {
		if it.ID == "" || checked[it.ID] || (it.CoTypeCode != "" && it.CoTypeCode != CoRestartInstances) {
			continue
		}
		checked[it.ID] = true
		if in, known := c.inWindow(it.rawCreate, notBefore, now); known && !in {
			continue
		}
		candidates = append(candidates, it.ID)
	}
	if len(candidates) > maxCandidates {
		return jobs.ChangeOrder{}, false, cannotTell(action, fmt.Sprintf("%d candidate change orders", len(candidates)))
	}
	for _, id := range candidates {
		co, raw, err := c.describeCO(ctx, id)
		if err != nil {
			return jobs.ChangeOrder{}, false, err
		}
		ok, known := c.matches(co, raw, appID, want, notBefore)
		if ok {
			return co, true, nil
		}
		if !known {
			return jobs.ChangeOrder{}, false, cannotTell(action, "change order "+id+" has an unreadable CreateTime")
		}
	}
	return jobs.ChangeOrder{}, false, nil
}

func cannotTell(action, msg string) error {
	return &jobs.SAEError{Class: jobs.ClassAmbiguous, Action: action, Message: msg}
}

// matches reports whether co is the restart of exactly want created in the
// window; known is false when co is a restart of want but its CreateTime
// could not be read (so nothing can be concluded).
func (c *Client) matches(co jobs.ChangeOrder, rawCreate, appID string, want map[string]bool, notBefore time.Time) (ok, known bool) {
	if co.CoTypeCode != CoRestartInstances || (co.AppID != "" && co.AppID != appID) {
		return false, true
	}
	got := map[string]bool{}
	for _, t := range co.Targets {
		got[t] = true
	}
	if len(got) != len(want) {
		return false, true
	}
	for t := range want {
		if !got[t] {
			return false, true
		}
	}
	return c.inWindow(rawCreate, notBefore, c.clk.Now())
}

// inWindow reports whether a zone-less CreateTime, read in COTimeLocation or
// in UTC, lies in [notBefore-slack, now+slack]. The upper bound keeps the UTC
// reading of an old Beijing time (8h later) from passing. known is false for
// an unreadable time.
func (c *Client) inWindow(raw string, notBefore, now time.Time) (in, known bool) {
	ts, ok := parseCOTimes(raw, c.coLoc, time.UTC)
	if !ok {
		return false, false
	}
	lo, hi := notBefore.Add(-c.slack), now.Add(c.slack)
	for _, t := range ts {
		if !t.Before(lo) && !t.After(hi) {
			return true, true
		}
	}
	return false, true
}
