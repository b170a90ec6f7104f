package sae

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	saesdk "github.com/aliyun/alibaba-cloud-sdk-go/services/sae"

	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

// Page sizes and bounds. SAE's instance listing defaults to 10 per page;
// asking for 100 makes listing an app of up to 100 instances in one group
// cost 2 calls (groups + instances) of the account's 60/min.
const (
	appsPageSize      = 100
	groupsPageSize    = 100
	instancesPageSize = 100
	coPageSize        = 50
	maxPages          = 200 // no listing may loop forever on a misbehaving server
	maxCOPages        = 10  // ListChangeOrders returns at most 500 items
)

// CoRestartInstances is the CoTypeCode of a RestartInstances change order.
const CoRestartInstances = "CoRestartInstances"

func invalid(action, msg string) error {
	return &jobs.SAEError{Class: jobs.ClassFatal, Action: action, Code: "InvalidParameter.Local", Message: msg}
}

// ListApplications returns every application of the namespace (all pages;
// an empty namespaceID lists the region's applications). Errors wrap
// *jobs.SAEError, or are ctx.Err().
func (c *Client) ListApplications(ctx context.Context, namespaceID string) ([]jobs.App, error) {
	type app struct{ AppId, AppName, NamespaceId, RegionId fstr }
	var out []jobs.App
	seen := map[string]bool{}
	for p := 1; p <= maxPages; p++ {
		req := saesdk.CreateListApplicationsRequest()
		req.NamespaceId = namespaceID
		req.PageSize = requests.NewInteger(appsPageSize)
		req.CurrentPage = requests.NewInteger(p)
		body, err := c.call(ctx, req, req.RoaRequest)
		if err != nil {
			return nil, err
		}
		var resp struct {
			page
			Data struct {
				page
				Applications []app
			}
		}
		if err := decodeTop(req.GetActionName(), body, &resp); err != nil {
			return nil, err
		}
		fresh := 0
		for _, a := range resp.Data.Applications {
			id := string(a.AppId)
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			fresh++
			ns := string(a.NamespaceId)
			if ns == "" {
				ns = namespaceID
			}
			out = append(out, jobs.App{ID: id, Name: string(a.AppName), NamespaceID: ns, Region: c.region})
		}
		total := int(max(resp.Data.TotalSize, resp.TotalSize))
		if lastPage(len(resp.Data.Applications), fresh, len(out), total, appsPageSize) {
			return out, nil
		}
	}
	return nil, tooManyPages(saesdk.CreateListApplicationsRequest().GetActionName())
}

// lastPage decides when a listing is complete: TotalSize when SAE gives it
// (SAE may cap PageSize below what we ask), else a short page; a page that
// brings nothing new also ends it (a server ignoring CurrentPage).
func lastPage(items, fresh, have, total, size int) bool {
	if items == 0 || fresh == 0 {
		return true
	}
	if total > 0 {
		return have >= total
	}
	return items < size
}

func tooManyPages(action string) error {
	return &jobs.SAEError{Class: jobs.ClassUnknown, Action: action, Code: CodeMalformed,
		Message: "pagination did not end after " + strconv.Itoa(maxPages) + " pages"}
}

// DescribeApplication returns one application's identity from
// DescribeApplicationConfig. Errors wrap *jobs.SAEError, or are ctx.Err().
func (c *Client) DescribeApplication(ctx context.Context, appID string) (jobs.App, error) {
	req := saesdk.CreateDescribeApplicationConfigRequest()
	if appID == "" {
		return jobs.App{}, invalid(req.GetActionName(), "empty app id")
	}
	if a, ok := c.meta.app(appID); ok {
		return a, nil
	}
	req.AppId = appID
	body, err := c.call(ctx, req, req.RoaRequest)
	if err != nil {
		return jobs.App{}, err
	}
	var d struct{ AppId, AppName, NamespaceId fstr }
	if err := decodeData(req.GetActionName(), body, &d); err != nil {
		return jobs.App{}, err
	}
	id := string(d.AppId)
	if id == "" {
		id = appID
	}
	a := jobs.App{ID: id, Name: string(d.AppName), NamespaceID: string(d.NamespaceId), Region: c.region}
	if id == appID {
		c.meta.setApp(a)
	}
	return a, nil
}

// DescribeApplicationStatus returns the app's status and its last change
// order. Errors wrap *jobs.SAEError, or are ctx.Err().
func (c *Client) DescribeApplicationStatus(ctx context.Context, appID string) (jobs.AppStatus, error) {
	req := saesdk.CreateDescribeApplicationStatusRequest()
	if appID == "" {
		return jobs.AppStatus{}, invalid(req.GetActionName(), "empty app id")
	}
	req.AppId = appID
	body, err := c.call(ctx, req, req.RoaRequest)
	if err != nil {
		return jobs.AppStatus{}, err
	}
	var d struct {
		CurrentStatus, LastChangeOrderId, LastChangeOrderStatus, SubStatus fstr
		LastChangeOrderRunning                                             fbool
		RunningInstances                                                   fint
	}
	if err := decodeData(req.GetActionName(), body, &d); err != nil {
		return jobs.AppStatus{}, err
	}
	return jobs.AppStatus{
		CurrentStatus:          string(d.CurrentStatus),
		LastChangeOrderID:      string(d.LastChangeOrderId),
		LastChangeOrderRunning: bool(d.LastChangeOrderRunning),
		LastChangeOrderStatus:  string(d.LastChangeOrderStatus),
		SubStatus:              string(d.SubStatus),
		RunningInstances:       int(d.RunningInstances),
	}, nil
}

// ListInstances returns every instance of every group of the app: one
// DescribeApplicationGroups call, then DescribeApplicationInstances for each
// group, all pages of 100 (so 1 + Σ⌈group size/100⌉ calls). An instance
// seen twice (pages shift while SAE restarts) is listed once. Errors wrap
// *jobs.SAEError, or are ctx.Err().
func (c *Client) ListInstances(ctx context.Context, appID string) ([]jobs.Instance, error) {
	if appID == "" {
		return nil, invalid("DescribeApplicationInstances", "empty app id")
	}
	groups, cachedGroups := c.meta.groupsOf(appID)
	if !cachedGroups {
		var err error
		if groups, err = c.listGroups(ctx, appID); err != nil {
			return nil, err
		}
		c.meta.setGroups(appID, groups)
	}
	out, err := c.listGroupInstances(ctx, appID, groups)
	if err != nil && cachedGroups && jobs.CodeOf(err) == "InvalidParameter.Obviously" {
		// A cached group was deleted since: read the groups again, once.
		c.meta.forget(appID)
		return c.ListInstances(ctx, appID)
	}
	return out, err
}

// listGroupInstances lists every instance of the given groups (all pages).
func (c *Client) listGroupInstances(ctx context.Context, appID string, groups []string) ([]jobs.Instance, error) {
	var out []jobs.Instance
	seen := map[string]bool{}
	for _, g := range groups {
		have := 0 // instances of this group so far
		for p := 1; ; p++ {
			if p > maxPages {
				return nil, tooManyPages("DescribeApplicationInstances")
			}
			req := saesdk.CreateDescribeApplicationInstancesRequest()
			req.AppId = appID
			req.GroupId = g
			req.PageSize = requests.NewInteger(instancesPageSize)
			req.CurrentPage = requests.NewInteger(p)
			body, err := c.call(ctx, req, req.RoaRequest)
			if err != nil {
				return nil, err
			}
			var d struct {
				page
				Instances []struct {
					InstanceId, GroupId, InstanceContainerStatus, InstanceHealthStatus fstr
					InstanceContainerRestarts, CreateTimeStamp                         fint
				}
			}
			if err := decodeData(req.GetActionName(), body, &d); err != nil {
				return nil, err
			}
			fresh := 0
			for _, in := range d.Instances {
				id := string(in.InstanceId)
				if id == "" || seen[id] {
					continue
				}
				seen[id] = true
				fresh++
				gid := string(in.GroupId)
				if gid == "" {
					gid = g
				}
				var created time.Time
				if in.CreateTimeStamp > 0 {
					created = time.UnixMilli(int64(in.CreateTimeStamp))
				}
				out = append(out, jobs.Instance{
					ID:              id,
					GroupID:         gid,
					ContainerStatus: string(in.InstanceContainerStatus),
					HealthStatus:    string(in.InstanceHealthStatus),
					Restarts:        int64(in.InstanceContainerRestarts),
					CreateTime:      created,
				})
			}
			have += fresh
			if lastPage(len(d.Instances), fresh, have, int(d.TotalSize), instancesPageSize) {
				break
			}
		}
	}
	return out, nil
}

// listGroups returns the app's group IDs. Data is a bare array with no
// total, so a page is the last when it is short or brings nothing new.
func (c *Client) listGroups(ctx context.Context, appID string) ([]string, error) {
	var ids []string
	seen := map[string]bool{}
	for p := 1; p <= maxPages; p++ {
		req := saesdk.CreateDescribeApplicationGroupsRequest()
		req.AppId = appID
		req.PageSize = requests.NewInteger(groupsPageSize)
		req.CurrentPage = requests.NewInteger(p)
		body, err := c.call(ctx, req, req.RoaRequest)
		if err != nil {
			return nil, err
		}
		var groups []struct{ GroupId, GroupName fstr }
		if err := decodeData(req.GetActionName(), body, &groups); err != nil {
			return nil, err
		}
		fresh := 0
		for _, g := range groups {
			id := string(g.GroupId)
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			fresh++
			ids = append(ids, id)
		}
		if lastPage(len(groups), fresh, len(ids), 0, groupsPageSize) {
			return ids, nil
		}
	}
	return nil, tooManyPages("DescribeApplicationGroups")
}

// restartOnce submits one RestartInstances call.
func (c *Client) restartOnce(ctx context.Context, appID string, instanceIDs []string) (string, error) {
	req := saesdk.CreateRestartInstancesRequest()
	req.AppId = appID
	req.InstanceIds = strings.Join(instanceIDs, ",")
	body, err := c.call(ctx, req, req.RoaRequest)
	if err != nil {
		return "", err
	}
	var d struct{ ChangeOrderId fstr }
	if err := decodeData(req.GetActionName(), body, &d); err != nil {
		return "", err
	}
	if d.ChangeOrderId == "" {
		return "", malformed(req.GetActionName(), errNoChangeOrderID)
	}
	return string(d.ChangeOrderId), nil
}

// DescribeChangeOrder returns a change order's state. CreateTime is read in
// Config.COTimeLocation. Errors wrap *jobs.SAEError, or are ctx.Err().
func (c *Client) DescribeChangeOrder(ctx context.Context, changeOrderID string) (jobs.ChangeOrder, error) {
	co, _, err := c.describeCO(ctx, changeOrderID)
	return co, err
}

// describeCO is DescribeChangeOrder, also returning the raw CreateTime so a
// caller can try several zones.
func (c *Client) describeCO(ctx context.Context, changeOrderID string) (jobs.ChangeOrder, string, error) {
	req := saesdk.CreateDescribeChangeOrderRequest()
	if changeOrderID == "" {
		return jobs.ChangeOrder{}, "", invalid(req.GetActionName(), "empty change order id")
	}
	req.ChangeOrderId = changeOrderID
	body, err := c.call(ctx, req, req.RoaRequest)
	if err != nil {
		return jobs.ChangeOrder{}, "", err
	}
	var d struct {
		ChangeOrderId, AppId, CoTypeCode, ErrorMessage, CreateTime fstr
		Status, SubStatus, BatchCount                              fint
		CoTargets                                                  []fstr
		// Pipelines only feeds FinishTime: a surprising shape is ignored.
		Pipelines json.RawMessage
	}
	if err := decodeData(req.GetActionName(), body, &d); err != nil {
		return jobs.ChangeOrder{}, "", err
	}
	firstStart, lastUpdate := pipelineTimes(d.Pipelines)
	co := jobs.ChangeOrder{
		ID:           string(d.ChangeOrderId),
		AppID:        string(d.AppId),
		Status:       int(d.Status),
		SubStatus:    int(d.SubStatus),
		CoTypeCode:   string(d.CoTypeCode),
		BatchCount:   int(d.BatchCount),
		ErrorMessage: Redact(string(d.ErrorMessage)),
		CreateTime:   c.coCreateTime(string(d.CreateTime), firstStart),
	}
	switch co.Status {
	case jobs.COSucceeded, jobs.COFailed, jobs.COAborted, jobs.COSystemFailed:
		co.FinishTime = lastUpdate
	}
	if co.ID == "" {
		co.ID = changeOrderID
	}
	for _, t := range d.CoTargets {
		co.Targets = append(co.Targets, string(t))
	}
	return co, string(d.CreateTime), nil
}

// coCreateTime reads a change order's CreateTime. A zone-less time is read
// in COTimeLocation, unless that reading is after the first batch's
// StartTime (epoch-ms, so zone-free) or an hour or more before it and the
// UTC reading is closer: that corrects a wrong zone assumption before it
// skews durations by hours.
func (c *Client) coCreateTime(raw string, firstStart time.Time) time.Time {
	ts, ok := parseCOTimes(raw, c.coLoc, time.UTC)
	if !ok {
		return time.Time{}
	}
	best := ts[0]
	// A change order normally starts its first batch within seconds; one
	// waiting for approval may start much later, so only a reading that is
	// impossible (after the start) or far off is second-guessed.
	if firstStart.IsZero() || (!best.After(firstStart.Add(c.slack)) && firstStart.Sub(best) < time.Hour) {
		return best
	}
	for _, t := range ts[1:] {
		if absDur(firstStart.Sub(t)) < absDur(firstStart.Sub(best)) {
			best = t
		}
	}
	return best
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// pipelineTimes returns the earliest StartTime and the latest UpdateTime of
// a change order's pipelines (batches), zero when absent. Pipelines may be
// an array or, as in ListChangeOrders, a string holding one.
func pipelineTimes(raw json.RawMessage) (firstStart, lastUpdate time.Time) {
	var ps []struct{ StartTime, UpdateTime fint }
	if json.Unmarshal(raw, &ps) != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil || json.Unmarshal([]byte(s), &ps) != nil {
			return time.Time{}, time.Time{}
		}
	}
	for _, p := range ps {
		if p.StartTime > 0 {
			if t := time.UnixMilli(int64(p.StartTime)); firstStart.IsZero() || t.Before(firstStart) {
				firstStart = t
			}
		}
		if p.UpdateTime > 0 {
			if t := time.UnixMilli(int64(p.UpdateTime)); t.After(lastUpdate) {
				lastUpdate = t
			}
		}
	}
	return firstStart, lastUpdate
}

// coTime reads a CreateTime in COTimeLocation; zero when unparseable.
func (c *Client) coTime(v string) time.Time {
	ts, ok := parseCOTimes(v, c.coLoc)
	if !ok {
		return time.Time{}
	}
	return ts[0]
}

// coItem is one ListChangeOrders item, with its raw CreateTime kept for
// matching under several zones.
type coItem struct {
	jobs.ChangeOrderSummary
	rawCreate string
}

// listChangeOrdersPage returns one page of ListChangeOrders and TotalSize.
func (c *Client) listChangeOrdersPage(ctx context.Context, appID, coType string, status, pageNo, size int) ([]coItem, int, error) {
	req := saesdk.CreateListChangeOrdersRequest()
	req.AppId = appID
	req.CoType = coType
	if status >= 0 {
		req.CoStatus = strconv.Itoa(status)
	}
	req.PageSize = requests.NewInteger(size)
	req.CurrentPage = requests.NewInteger(pageNo)
	body, err := c.call(ctx, req, req.RoaRequest)
	if err != nil {
		return nil, 0, err
	}
	var d struct {
		page
		ChangeOrderList []struct {
			ChangeOrderId, CoTypeCode, CreateTime fstr
			Status                                fint
		}
	}
	if err := decodeData(req.GetActionName(), body, &d); err != nil {
		return nil, 0, err
	}
	items := make([]coItem, 0, len(d.ChangeOrderList))
	for _, it := range d.ChangeOrderList {
		items = append(items, coItem{
			ChangeOrderSummary: jobs.ChangeOrderSummary{
				ID:         string(it.ChangeOrderId),
				Status:     int(it.Status),
				CoTypeCode: string(it.CoTypeCode),
				CreateTime: c.coTime(string(it.CreateTime)),
			},
			rawCreate: string(it.CreateTime),
		})
	}
	return items, int(d.TotalSize), nil
}

// ListChangeOrders lists the app's change orders, status < 0 meaning any
// status, in pages of 50 up to 500 items (SAE keeps a long history; callers
// filter by status). Items carry no targets. Errors wrap *jobs.SAEError, or
// are ctx.Err().
func (c *Client) ListChangeOrders(ctx context.Context, appID string, status int) ([]jobs.ChangeOrderSummary, error) {
	if appID == "" {
		return nil, invalid("ListChangeOrders", "empty app id")
	}
	var out []jobs.ChangeOrderSummary
	seen := map[string]bool{}
	for p := 1; p <= maxCOPages; p++ {
		items, total, err := c.listChangeOrdersPage(ctx, appID, "", status, p, coPageSize)
		if err != nil {
			return nil, err
		}
		fresh := 0
		for _, it := range items {
			if it.ID == "" || seen[it.ID] {
				continue
			}
			seen[it.ID] = true
			fresh++
			out = append(out, it.ChangeOrderSummary)
		}
		if lastPage(len(items), fresh, len(out), total, coPageSize) {
			break
		}
	}
	return out, nil
}

// AbortChangeOrder aborts a change order. Callers only ever abort their own.
// Errors wrap *jobs.SAEError (ClassAmbiguous when the outcome is unknown:
// check with DescribeChangeOrder), or are ctx.Err().
func (c *Client) AbortChangeOrder(ctx context.Context, changeOrderID string) error {
	req := saesdk.CreateAbortChangeOrderRequest()
	if changeOrderID == "" {
		return invalid(req.GetActionName(), "empty change order id")
	}
	req.ChangeOrderId = changeOrderID
	_, err := c.call(ctx, req, req.RoaRequest)
	return err
}
