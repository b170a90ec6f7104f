package emulator

import (
	"encoding/json"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Every handler runs with s.mu held and the model advanced to now.

func need(q url.Values, name string) (string, *apiError) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return "", bizErr("InvalidParameter.NotEmpty", name)
	}
	return v, nil
}

// intParam parses an optional positive integer parameter.
func intParam(q url.Values, name string, def int) (int, *apiError) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, bizErr("InvalidParameter.Obviously", name)
	}
	return n, nil
}

func paging(q url.Values, defSize int) (page, size int, e *apiError) {
	if page, e = intParam(q, "CurrentPage", 1); e != nil {
		return 0, 0, e
	}
	size, e = intParam(q, "PageSize", defSize)
	return page, size, e
}

func pageOf[T any](items []T, page, size int) []T {
	from := (page - 1) * size
	if from >= len(items) {
		return []T{}
	}
	return items[from:min(from+size, len(items))]
}

func (s *Server) app(q url.Values, notFound string) (*app, *apiError) {
	id, e := need(q, "AppId")
	if e != nil {
		return nil, e
	}
	a := s.apps[id]
	if a == nil {
		return nil, bizErr(notFound)
	}
	return a, nil
}

func (s *Server) restartInstances(q url.Values, now time.Time) (result, *apiError) {
	a, e := s.app(q, "InvalidApplication.NotFound")
	if e != nil {
		return result{}, e
	}
	raw, e := need(q, "InstanceIds")
	if e != nil {
		return result{}, e
	}
	if a.notDeployed {
		return result{}, bizErr("Application.NotDeployYet")
	}
	if a.stopped {
		return result{}, bizErr("Application.InvalidStatus")
	}
	var pods []*pod
	seen := map[string]bool{}
	for _, id := range strings.Split(raw, ",") {
		id = strings.TrimSpace(id)
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		p := a.pod(id)
		if p == nil {
			return result{}, bizErr("InvalidParameter.Obviously", "InstanceIds")
		}
		pods = append(pods, p)
	}
	if len(pods) == 0 {
		return result{}, bizErr("InvalidParameter.NotEmpty", "InstanceIds")
	}
	if a.runningCO() != nil {
		return result{}, bizErr("Application.ChangerOrderRunning")
	}
	outcome := s.coFaultLocked("RestartInstances", a.id, now)
	co := s.startRestartCOLocked(a, CoRestartInstances, [][]*pod{pods}, now, outcome)
	return result{data: map[string]any{"ChangeOrderId": co.id}, coID: co.id}, nil
}

func (s *Server) restartApplication(q url.Values, now time.Time) (result, *apiError) {
	a, e := s.app(q, "InvalidApplication.NotFound")
	if e != nil {
		return result{}, e
	}
	if a.notDeployed {
		return result{}, bizErr("Application.NotDeployYet")
	}
	pods := a.livePods("")
	if a.stopped || len(pods) == 0 {
		return result{}, bizErr("Application.InvalidStatus")
	}
	minReady := 1
	if v := q.Get("MinReadyInstances"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return result{}, bizErr("InvalidParameter.Obviously", "MinReadyInstances")
		}
		minReady = n
	}
	if v := q.Get("MinReadyInstanceRatio"); v != "" {
		r, err := strconv.Atoi(v)
		if err != nil || r < 0 || r > 100 {
			return result{}, bizErr("InvalidParameter.Obviously", "MinReadyInstanceRatio")
		}
		minReady = int(math.Ceil(float64(r) * float64(len(pods)) / 100))
	}
	if a.runningCO() != nil {
		return result{}, bizErr("Application.ChangerOrderRunning")
	}
	// Batches keep at least minReady instances up: each restarts len-minReady (at least one).
	size := max(1, len(pods)-minReady)
	var batches [][]*pod
	for i := 0; i < len(pods); i += size {
		batches = append(batches, pods[i:min(i+size, len(pods))])
	}
	outcome := s.coFaultLocked("RestartApplication", a.id, now)
	co := s.startRestartCOLocked(a, CoRestartApplication, batches, now, outcome)
	return result{data: map[string]any{"ChangeOrderId": co.id}, coID: co.id}, nil
}

type pipelineJSON struct {
	Status        int    `json:"Status"`
	StartTime     int64  `json:"StartTime"`
	UpdateTime    int64  `json:"UpdateTime"`
	BatchType     int    `json:"BatchType"`
	ParallelCount int    `json:"ParallelCount"`
	PipelineName  string `json:"PipelineName"`
	PipelineId    string `json:"PipelineId"`
}

func pipelines(co *changeOrder) []pipelineJSON {
	out := make([]pipelineJSON, 0, len(co.batches))
	for i, b := range co.batches {
		p := pipelineJSON{
			Status: b.status, UpdateTime: b.update.UnixMilli(), ParallelCount: len(b.pods),
			PipelineName: "Batch " + strconv.Itoa(i+1) + " Change", PipelineId: b.pipelineID,
		}
		if !b.start.IsZero() {
			p.StartTime = b.start.UnixMilli()
		}
		out = append(out, p)
	}
	return out
}

func (s *Server) changeOrder(q url.Values) (*changeOrder, *apiError) {
	id, e := need(q, "ChangeOrderId")
	if e != nil {
		return nil, e
	}
	co := s.cos[id]
	if co == nil {
		return nil, bizErr("InvalidChangeOrder.NotFound")
	}
	return co, nil
}

func (s *Server) describeChangeOrder(q url.Values, _ time.Time) (result, *apiError) {
	co, e := s.changeOrder(q)
	if e != nil {
		return result{}, e
	}
	cur := ""
	if len(co.batches) > 0 {
		cur = co.batches[co.current].pipelineID
	}
	return result{coID: co.id, data: map[string]any{
		"ChangeOrderId": co.id, "AppId": co.a.id, "AppName": co.a.name,
		"Status": co.status, "SubStatus": co.subStatus, "ErrorMessage": co.errMsg,
		"CreateTime": formatCOTime(co.created), "CoTypeCode": co.typ, "CoType": coTypeText(co.typ),
		"BatchCount": len(co.batches), "BatchType": "auto", "BatchWaitTime": 0, "Auto": true,
		"Description": co.description, "ApprovalId": "", "SupportAbortFreeze": false, "SupportRollback": false,
		"CurrentPipelineId": cur, "CoTargets": append([]string{}, co.targets...), "Pipelines": pipelines(co),
	}}, nil
}

func (s *Server) listChangeOrders(q url.Values, _ time.Time) (result, *apiError) {
	a, e := s.app(q, "InvalidAppId.NotFound")
	if e != nil {
		return result{}, e
	}
	page, size, e := paging(q, 10)
	if e != nil {
		return result{}, e
	}
	status := -1
	if v := q.Get("CoStatus"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return result{}, bizErr("InvalidParameter.Obviously", "CoStatus")
		}
		status = n
	}
	coType, key := q.Get("CoType"), q.Get("Key")
	var items []map[string]any
	// Newest first, like the console.
	for _, co := range slices.Backward(a.cos) {
		if (status >= 0 && co.status != status) || (coType != "" && co.typ != coType) ||
			(key != "" && !strings.Contains(co.description, key)) {
			continue
		}
		// The old SDK types Pipelines as a string here; SAE is assumed to send the JSON text.
		pl, _ := json.Marshal(pipelines(co))
		source, user := "pop", "emulator"
		if co.foreign {
			source, user = "console", "someone-else"
		}
		group := ""
		if len(a.groups) > 0 {
			group = a.groups[0].id
		}
		items = append(items, map[string]any{
			"ChangeOrderId": co.id, "AppId": a.id, "Status": co.status, "CoTypeCode": co.typ, "CoType": coTypeText(co.typ),
			"CreateTime": formatCOTime(co.created), "FinishTime": formatCOTime(co.ended), "BatchCount": len(co.batches),
			"BatchType": "auto", "Source": source, "GroupId": group, "UserId": user, "CreateUserId": user,
			"NamespaceId": a.ns, "Description": co.description, "Pipelines": string(pl),
		})
	}
	total := len(items)
	return result{data: map[string]any{
		"ChangeOrderList": pageOf(append([]map[string]any{}, items...), page, size),
		"CurrentPage":     page, "PageSize": size, "TotalSize": total,
	}}, nil
}

func (s *Server) abortChangeOrder(q url.Values, now time.Time) (result, *apiError) {
	co, e := s.changeOrder(q)
	if e != nil {
		return result{}, e
	}
	if !co.running() {
		// Not documented; assumed to be a parameter error naming the change order.
		return result{}, bizErr("InvalidParameter.WithMessage", "ChangeOrderId", "the change order has already finished")
	}
	s.abortLocked(co, now)
	return result{data: map[string]any{"ChangeOrderId": co.id}, coID: co.id}, nil
}

func (s *Server) describeApplicationStatus(q url.Values, _ time.Time) (result, *apiError) {
	a, e := s.app(q, "InvalidApplication.NotFound")
	if e != nil {
		return result{}, e
	}
	data := map[string]any{
		"AppId": a.id, "CurrentStatus": a.currentStatus(), "RunningInstances": a.runningInstances(),
		"CreateTime": strconv.FormatInt(a.created.UnixMilli(), 10), "LastChangeOrderId": "",
		"LastChangeOrderRunning": false, "LastChangeOrderStatus": "", "SubStatus": "NORMAL",
		"ArmsAdvancedEnabled": "false", "EnableAgent": false, "FileSizeLimit": 10240,
	}
	if co := a.lastCO(); co != nil {
		data["LastChangeOrderId"] = co.id
		data["LastChangeOrderRunning"] = co.running()
		data["LastChangeOrderStatus"] = statusNames[co.status]
		if co.running() && co.subStatus == 1 {
			data["SubStatus"] = "RUNNING_BUT_HAS_ERROR"
		}
	}
	return result{data: data}, nil
}

func (s *Server) describeApplicationInstances(q url.Values, _ time.Time) (result, *apiError) {
	a, e := s.app(q, "InvalidApplication.NotFound")
	if e != nil {
		return result{}, e
	}
	gid, e := need(q, "GroupId")
	if e != nil {
		return result{}, e
	}
	if !slices.ContainsFunc(a.groups, func(g *group) bool { return g.id == gid }) {
		return result{}, bizErr("InvalidParameter.Obviously", "GroupId")
	}
	page, size, e := paging(q, 10)
	if e != nil {
		return result{}, e
	}
	pods := a.livePods(gid)
	if id := q.Get("InstanceId"); id != "" {
		pods = slices.DeleteFunc(pods, func(p *pod) bool { return p.id != id })
	}
	if pid := q.Get("PipelineId"); pid != "" {
		orig := map[string]bool{}
		for _, co := range a.cos {
			for _, b := range co.batches {
				if b.pipelineID == pid {
					for _, p := range b.pods {
						orig[p.origID] = true
					}
				}
			}
		}
		pods = slices.DeleteFunc(pods, func(p *pod) bool { return !orig[p.origID] })
	}
	sortPods(pods, q.Get("Reverse") == "true")
	var list []map[string]any
	for _, p := range pageOf(pods, page, size) {
		list = append(list, map[string]any{
			"InstanceId": p.id, "GroupId": p.groupID, "InstanceContainerStatus": p.status,
			"InstanceHealthStatus": p.health, "InstanceContainerRestarts": p.restarts,
			"InstanceContainerIp": p.ip, "CreateTimeStamp": p.created.UnixMilli(), "FinishTimeStamp": 0,
			"VSwitchId": "vsw-emulator", "ImageUrl": "registry.example/" + a.name + ":latest",
			"PackageVersion": "1.0.0", "Eip": "", "DebugStatus": false,
		})
	}
	if list == nil {
		list = []map[string]any{}
	}
	return result{data: map[string]any{
		"Instances": list, "CurrentPage": page, "PageSize": size, "TotalSize": len(pods),
	}}, nil
}

func (s *Server) describeApplicationGroups(q url.Values, _ time.Time) (result, *apiError) {
	a, e := s.app(q, "InvalidApplication.NotFound")
	if e != nil {
		return result{}, e
	}
	page, size, e := paging(q, math.MaxInt32)
	if e != nil {
		return result{}, e
	}
	var out []map[string]any
	for _, g := range pageOf(a.groups, page, size) {
		running := 0
		for _, p := range a.livePods(g.id) {
			if p.status == podRunning {
				running++
			}
		}
		replicas := g.replicas
		if a.stopped || a.notDeployed {
			replicas = 0
		}
		out = append(out, map[string]any{
			"GroupId": g.id, "GroupName": g.name, "GroupType": 0, "Replicas": replicas, "RunningInstances": running,
			"PackageType": "Image", "ImageUrl": "registry.example/" + a.name + ":latest", "PackageUrl": "",
			"PackageVersion": "1.0.0", "Jdk": "", "WebContainer": "", "EdasContainerVersion": "",
		})
	}
	if out == nil {
		out = []map[string]any{}
	}
	return result{data: out}, nil
}

func (s *Server) appSummary(a *app) map[string]any {
	replicas := 0
	for _, g := range a.groups {
		replicas += g.replicas
	}
	if a.stopped || a.notDeployed {
		replicas = 0
	}
	return map[string]any{
		"AppId": a.id, "AppName": a.name, "NamespaceId": a.ns, "RegionId": a.region,
		"Instances": replicas, "RunningInstances": a.runningInstances(), "AppDescription": "",
		"AppDeletingStatus": false, "ScaleRuleEnabled": false, "Cpu": 1000, "Mem": 2048,
		"Tags": []any{},
	}
}

func (s *Server) listApplications(q url.Values, _ time.Time) (result, *apiError) {
	page, size, e := paging(q, 10)
	if e != nil {
		return result{}, e
	}
	ns, name := q.Get("NamespaceId"), q.Get("AppName")
	var apps []map[string]any
	for _, id := range s.appOrder {
		a := s.apps[id]
		if (ns != "" && a.ns != ns) || (name != "" && !strings.Contains(a.name, name)) {
			continue
		}
		apps = append(apps, s.appSummary(a))
	}
	total := len(apps)
	return result{
		data: map[string]any{
			"Applications": pageOf(append([]map[string]any{}, apps...), page, size),
			"CurrentPage":  page, "PageSize": size, "TotalSize": total,
		},
		top: map[string]any{"CurrentPage": page, "PageSize": size, "TotalSize": total},
	}, nil
}

func (s *Server) describeApplicationConfig(q url.Values, _ time.Time) (result, *apiError) {
	a, e := s.app(q, "InvalidApplication.NotFound")
	if e != nil {
		return result{}, e
	}
	d := s.appSummary(a)
	delete(d, "Instances")
	delete(d, "RunningInstances")
	d["Replicas"] = s.appSummary(a)["Instances"]
	d["PackageType"] = "Image"
	d["ImageUrl"] = "registry.example/" + a.name + ":latest"
	d["MinReadyInstances"] = 1
	d["MinReadyInstanceRatio"] = -1
	return result{data: d}, nil
}
