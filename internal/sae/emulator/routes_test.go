package emulator

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/sae"
)

func TestReadRoutesDecodeThroughTheSDK(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client()

	t.Run("ListApplications filters by namespace and name, list in Data.Applications", func(t *testing.T) {
		req := sae.CreateListApplicationsRequest()
		e.at(req.RoaRequest)
		req.NamespaceId = "cn-hangzhou:prod"
		req.AppName = "sho"
		resp, err := c.ListApplications(req)
		if err != nil {
			t.Fatalf("ListApplications() = %v", err)
		}
		if !resp.Success || resp.Code != "200" || resp.Data.TotalSize != 1 || len(resp.Data.Applications) != 1 {
			t.Fatalf("ListApplications() = %+v, want one app", resp)
		}
		got := resp.Data.Applications[0]
		if got.AppId != appA || got.AppName != "shop" || got.NamespaceId != "cn-hangzhou:prod" || got.RegionId != "cn-hangzhou" || got.Instances != 3 {
			t.Errorf("Applications[0] = %+v, want shop/%s", got, appA)
		}
		if resp.TotalSize != 1 {
			t.Errorf("top-level TotalSize = %d, want 1", resp.TotalSize)
		}
	})

	t.Run("ListApplications pages", func(t *testing.T) {
		req := sae.CreateListApplicationsRequest()
		e.at(req.RoaRequest)
		req.PageSize = requests.NewInteger(1)
		req.CurrentPage = requests.NewInteger(2)
		resp, err := c.ListApplications(req)
		if err != nil {
			t.Fatalf("ListApplications() = %v", err)
		}
		if resp.Data.TotalSize != 2 || len(resp.Data.Applications) != 1 || resp.Data.Applications[0].AppId != appB {
			t.Errorf("page 2 of size 1 = %+v, want [%s] of 2", resp.Data, appB)
		}
	})

	t.Run("DescribeApplicationConfig gives name, namespace, region", func(t *testing.T) {
		req := sae.CreateDescribeApplicationConfigRequest()
		e.at(req.RoaRequest)
		req.AppId = appA
		resp, err := c.DescribeApplicationConfig(req)
		if err != nil {
			t.Fatalf("DescribeApplicationConfig() = %v", err)
		}
		if resp.Data.AppName != "shop" || resp.Data.NamespaceId != "cn-hangzhou:prod" || resp.Data.RegionId != "cn-hangzhou" || resp.Data.Replicas != 3 {
			t.Errorf("DescribeApplicationConfig().Data = %+v", resp.Data)
		}
	})

	var groupID string
	t.Run("DescribeApplicationGroups Data is an array with the default group", func(t *testing.T) {
		req := sae.CreateDescribeApplicationGroupsRequest()
		e.at(req.RoaRequest)
		req.AppId = appA
		resp, err := c.DescribeApplicationGroups(req)
		if err != nil {
			t.Fatalf("DescribeApplicationGroups() = %v", err)
		}
		if len(resp.Data) != 1 || resp.Data[0].GroupName != DefaultGroupName || resp.Data[0].Replicas != 3 || resp.Data[0].RunningInstances != 3 {
			t.Fatalf("DescribeApplicationGroups().Data = %+v, want one _DEFAULT_GROUP of 3", resp.Data)
		}
		groupID = resp.Data[0].GroupId
	})

	t.Run("DescribeApplicationInstances lists running healthy instances", func(t *testing.T) {
		req := sae.CreateDescribeApplicationInstancesRequest()
		e.at(req.RoaRequest)
		req.AppId, req.GroupId = appA, groupID
		resp, err := c.DescribeApplicationInstances(req)
		if err != nil {
			t.Fatalf("DescribeApplicationInstances() = %v", err)
		}
		if resp.Data.TotalSize != 3 || len(resp.Data.Instances) != 3 || resp.Data.CurrentPage != 1 || resp.Data.PageSize != 10 {
			t.Fatalf("DescribeApplicationInstances().Data = %+v, want 3 instances on page 1 of size 10", resp.Data)
		}
		for _, in := range resp.Data.Instances {
			if in.InstanceContainerStatus != "Running" || in.InstanceHealthStatus != "Healthy" || in.GroupId != groupID ||
				!strings.HasPrefix(in.InstanceId, "shop-"+appA+"-") || in.CreateTimeStamp == 0 {
				t.Errorf("instance = %+v, want a Running Healthy pod of shop", in)
			}
		}
	})

	t.Run("DescribeApplicationStatus of an app without change orders", func(t *testing.T) {
		st := e.status(appA)
		if st.Data.CurrentStatus != "RUNNING" || st.Data.RunningInstances != 3 || st.Data.LastChangeOrderRunning || st.Data.LastChangeOrderId != "" || st.Data.SubStatus != "NORMAL" {
			t.Errorf("DescribeApplicationStatus().Data = %+v", st.Data)
		}
	})
}

func TestRestartInstancesLifecycle(t *testing.T) {
	tests := []struct {
		name    string
		replace bool
	}{
		{name: "in place: same IDs, restarts+1, new CreateTimeStamp", replace: false},
		{name: "replaced: new IDs traced back to the originals", replace: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{ReplaceInstanceIDs: tt.replace})
			orig := e.instanceIDs(appA)
			coID, err := e.restart(e.client(), appA, orig[0], orig[1])
			if err != nil {
				t.Fatalf("RestartInstances() = %v", err)
			}
			co := e.describeCO(coID)
			if co.Status != 0 || co.CoTypeCode != CoRestartInstances || !slices.Equal(co.CoTargets, orig[:2]) ||
				len(co.Pipelines) != 1 || co.BatchCount != 1 || co.CurrentPipelineId != co.Pipelines[0].PipelineId || co.AppId != appA {
				t.Fatalf("DescribeChangeOrder() = %+v, want a preparing CoRestartInstances of %v", co, orig[:2])
			}
			if co.CreateTime != "2026-12-01 18:00:00" {
				t.Errorf("CreateTime = %q, want Shanghai wall time 2026-12-01 18:00:00", co.CreateTime)
			}
			st := e.status(appA)
			if !st.Data.LastChangeOrderRunning || st.Data.LastChangeOrderId != coID || st.Data.LastChangeOrderStatus != "READY" {
				t.Errorf("status during preparation = %+v, want READY and running", st.Data)
			}

			// The restart takes 60 s: check each phase of the two targets.
			steps := []struct {
				at        time.Duration
				coStatus  int
				container string
				health    string
			}{
				{12 * time.Second, 1, "Terminating", "Healthy"},
				{24 * time.Second, 1, "Pending", "NotCheckedYet"},
				{36 * time.Second, 1, "PodInitializing", "NotCheckedYet"},
				{54 * time.Second, 1, "Running", "NotCheckedYet"},
				{60 * time.Second, 2, "Running", "Healthy"},
			}
			elapsed := time.Duration(0)
			for _, s := range steps {
				e.clk.Advance(s.at - elapsed)
				elapsed = s.at
				if got := e.describeCO(coID).Status; got != s.coStatus {
					t.Errorf("at %v: CO status = %d, want %d", s.at, got, s.coStatus)
				}
				for _, in := range e.srv.Instances(appA) {
					if in.OriginalID == orig[2] {
						if in.ContainerStatus != "Running" || in.Restarts != 0 {
							t.Errorf("at %v: untouched instance = %+v, want Running", s.at, in)
						}
						continue
					}
					if in.ContainerStatus != s.container || in.HealthStatus != s.health {
						t.Errorf("at %v: instance %s = %s/%s, want %s/%s", s.at, in.ID, in.ContainerStatus, in.HealthStatus, s.container, s.health)
					}
				}
			}
			final := e.srv.Instances(appA)
			if len(final) != 3 {
				t.Fatalf("Instances() = %d, want 3", len(final))
			}
			for _, in := range final[:2] {
				wantID := in.OriginalID
				if tt.replace && in.ID == in.OriginalID {
					t.Errorf("instance %s kept its ID, want a new one in replace mode", in.ID)
				}
				if !tt.replace && (in.ID != wantID || in.Restarts != 1 || !in.CreateTime.Equal(t0.Add(18*time.Second))) {
					t.Errorf("instance = %+v, want same ID, 1 restart, created at t0+18s", in)
				}
			}
			if got, want := e.srv.Restarts(appA), map[string]int{orig[0]: 1, orig[1]: 1}; !mapsEqual(got, want) {
				t.Errorf("Restarts() = %v, want %v", got, want)
			}
			st = e.status(appA)
			if st.Data.LastChangeOrderRunning || st.Data.LastChangeOrderStatus != "SUCCESS" || st.Data.RunningInstances != 3 {
				t.Errorf("status after = %+v, want SUCCESS, not running, 3 running", st.Data)
			}
			recs := e.srv.ChangeOrders(appA)
			if len(recs) != 1 || recs[0].Status != 2 || !recs[0].Ended.Equal(t0.Add(60*time.Second)) || recs[0].Foreign {
				t.Errorf("ChangeOrders() = %+v, want one ended at t0+60s", recs)
			}
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestListChangeOrdersShapesAndFilters(t *testing.T) {
	e := newEnv(t, Config{})
	ids := e.instanceIDs(appA)
	first, err := e.restart(e.client(), appA, ids[0])
	if err != nil {
		t.Fatalf("RestartInstances() = %v", err)
	}
	e.clk.Advance(61 * time.Second)
	second, err := e.restart(e.client(), appA, ids[1])
	if err != nil {
		t.Fatalf("RestartInstances() = %v", err)
	}
	tests := []struct {
		name     string
		coStatus string
		coType   string
		want     []string
	}{
		{name: "all, newest first", want: []string{second, first}},
		{name: "by status 2 (succeeded)", coStatus: "2", want: []string{first}},
		{name: "by status 0 (preparing)", coStatus: "0", want: []string{second}},
		{name: "by type CoDeploy finds none", coType: CoDeploy, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := sae.CreateListChangeOrdersRequest()
			e.at(req.RoaRequest)
			req.AppId, req.CoStatus, req.CoType = appA, tt.coStatus, tt.coType
			resp, err := e.client().ListChangeOrders(req)
			if err != nil {
				t.Fatalf("ListChangeOrders() = %v", err)
			}
			var got []string
			for _, co := range resp.Data.ChangeOrderList {
				got = append(got, co.ChangeOrderId)
				var pl []map[string]any
				if err := json.Unmarshal([]byte(co.Pipelines), &pl); err != nil || len(pl) != 1 {
					t.Errorf("Pipelines = %q, want a JSON string of one pipeline", co.Pipelines)
				}
				if co.CoTypeCode != CoRestartInstances || co.AppId != appA || co.CreateTime == "" {
					t.Errorf("item = %+v", co)
				}
			}
			if !slices.Equal(got, tt.want) || resp.Data.TotalSize != len(tt.want) {
				t.Errorf("ListChangeOrders() = %v (total %d), want %v", got, resp.Data.TotalSize, tt.want)
			}
		})
	}
}

func TestDescribeApplicationInstancesPages(t *testing.T) {
	e := newEnv(t, Config{Apps: []AppSpec{{AppID: appA, Instances: 25,
		Groups: []GroupSpec{{GroupID: "g-main", Instances: 20}, {GroupID: "g-canary", GroupName: "canary", Instances: 5}}}}})
	tests := []struct {
		name      string
		group     string
		page      int
		size      int
		wantCount int
		wantTotal int
	}{
		{name: "default page size is 10", group: "g-main", wantCount: 10, wantTotal: 20},
		{name: "second page", group: "g-main", page: 2, wantCount: 10, wantTotal: 20},
		{name: "past the end is empty", group: "g-main", page: 3, wantCount: 0, wantTotal: 20},
		{name: "other group", group: "g-canary", size: 100, wantCount: 5, wantTotal: 5},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := sae.CreateDescribeApplicationInstancesRequest()
			e.at(req.RoaRequest)
			req.AppId, req.GroupId = appA, tt.group
			if tt.page > 0 {
				req.CurrentPage = requests.NewInteger(tt.page)
			}
			if tt.size > 0 {
				req.PageSize = requests.NewInteger(tt.size)
			}
			resp, err := e.client().DescribeApplicationInstances(req)
			if err != nil {
				t.Fatalf("DescribeApplicationInstances() = %v", err)
			}
			if len(resp.Data.Instances) != tt.wantCount || resp.Data.TotalSize != tt.wantTotal {
				t.Errorf("got %d of %d, want %d of %d", len(resp.Data.Instances), resp.Data.TotalSize, tt.wantCount, tt.wantTotal)
			}
			for _, in := range resp.Data.Instances {
				if seen[in.InstanceId] {
					t.Errorf("instance %s listed twice across pages", in.InstanceId)
				}
				seen[in.InstanceId] = true
			}
		})
	}
}

func TestRestartApplicationRunsBatches(t *testing.T) {
	e := newEnv(t, Config{Apps: []AppSpec{{AppID: appA, Instances: 4, RestartTime: 10 * time.Second}}})
	req := sae.CreateRestartApplicationRequest()
	e.at(req.RoaRequest)
	req.AppId = appA
	req.MinReadyInstances = requests.NewInteger(2)
	resp, err := e.client().RestartApplication(req)
	if err != nil || !resp.Success {
		t.Fatalf("RestartApplication() = %+v, %v", resp, err)
	}
	co := e.describeCO(resp.Data.ChangeOrderId)
	if co.BatchCount != 2 || co.CoTypeCode != CoRestartApplication || len(co.CoTargets) != 4 {
		t.Fatalf("DescribeChangeOrder() = %+v, want 2 batches over 4 instances", co)
	}
	e.clk.Advance(15 * time.Second)
	co = e.describeCO(resp.Data.ChangeOrderId)
	if co.Status != 1 || co.CurrentPipelineId != co.Pipelines[1].PipelineId || co.Pipelines[0].Status != 2 {
		t.Errorf("mid second batch = status %d, current %s, pipelines %+v; want running batch 2", co.Status, co.CurrentPipelineId, co.Pipelines)
	}
	e.clk.Advance(5 * time.Second)
	if got := e.describeCO(resp.Data.ChangeOrderId).Status; got != 2 {
		t.Errorf("after 20s status = %d, want 2", got)
	}
	for id, n := range e.srv.Restarts(appA) {
		if n != 1 {
			t.Errorf("Restarts()[%s] = %d, want 1", id, n)
		}
	}
}

func TestInstanceListingDuringARestart(t *testing.T) {
	e := newEnv(t, Config{Apps: []AppSpec{{AppID: appA, Instances: 3, RestartTime: 60 * time.Second, Groups: []GroupSpec{{GroupID: "g1", Instances: 3}}}}})
	ids := e.instanceIDs(appA)
	coID, err := e.restart(e.client(), appA, ids[2])
	if err != nil {
		t.Fatalf("RestartInstances() = %v", err)
	}
	pipeline := e.describeCO(coID).Pipelines[0].PipelineId
	e.clk.Advance(20 * time.Second) // ids[2] is Pending
	list := func(mutate func(*sae.DescribeApplicationInstancesRequest)) []string {
		req := sae.CreateDescribeApplicationInstancesRequest()
		e.at(req.RoaRequest)
		req.AppId, req.GroupId = appA, "g1"
		mutate(req)
		resp, err := e.client().DescribeApplicationInstances(req)
		if err != nil {
			t.Fatalf("DescribeApplicationInstances() = %v", err)
		}
		var got []string
		for _, in := range resp.Data.Instances {
			got = append(got, in.InstanceId+"/"+in.InstanceContainerStatus)
		}
		return got
	}
	tests := []struct {
		name   string
		mutate func(*sae.DescribeApplicationInstancesRequest)
		want   []string
	}{
		{name: "status order puts Pending before Running", mutate: func(*sae.DescribeApplicationInstancesRequest) {},
			want: []string{ids[2] + "/Pending", ids[0] + "/Running", ids[1] + "/Running"}},
		{name: "Reverse puts Running first", mutate: func(r *sae.DescribeApplicationInstancesRequest) { r.Reverse = requests.NewBoolean(true) },
			want: []string{ids[0] + "/Running", ids[1] + "/Running", ids[2] + "/Pending"}},
		{name: "InstanceId filters one instance", mutate: func(r *sae.DescribeApplicationInstancesRequest) { r.QueryParams["InstanceId"] = ids[1] },
			want: []string{ids[1] + "/Running"}},
		{name: "PipelineId filters the batch's instances", mutate: func(r *sae.DescribeApplicationInstancesRequest) { r.QueryParams["PipelineId"] = pipeline },
			want: []string{ids[2] + "/Pending"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := list(tt.mutate); !slices.Equal(got, tt.want) {
				t.Errorf("instances = %v, want %v", got, tt.want)
			}
		})
	}
	if st := e.status(appA); st.Data.RunningInstances != 2 {
		t.Errorf("RunningInstances = %d, want 2 while one restarts", st.Data.RunningInstances)
	}
}

func TestStoppedAndUndeployedApps(t *testing.T) {
	e := newEnv(t, Config{Apps: []AppSpec{
		{AppID: appA, Instances: 2, Stopped: true},
		{AppID: appB, Instances: 2, NotDeployed: true},
	}})
	if got := e.srv.AppIDs(); !slices.Equal(got, []string{appA, appB}) {
		t.Errorf("AppIDs() = %v, want [%s %s]", got, appA, appB)
	}
	tests := []struct {
		name        string
		appID       string
		wantStatus  string
		wantRestart string
	}{
		{name: "a stopped app is STOPPED and cannot restart", appID: appA, wantStatus: "STOPPED", wantRestart: "Application.InvalidStatus"},
		{name: "an undeployed app is UNKNOWN and NotDeployYet", appID: appB, wantStatus: "UNKNOWN", wantRestart: "Application.NotDeployYet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if st := e.status(tt.appID); st.Data.CurrentStatus != tt.wantStatus || st.Data.RunningInstances != 0 {
				t.Errorf("status = %+v, want %s with 0 running", st.Data, tt.wantStatus)
			}
			if got := e.srv.Instances(tt.appID); len(got) != 0 {
				t.Errorf("Instances() = %v, want none", got)
			}
			req := sae.CreateRestartApplicationRequest()
			e.at(req.RoaRequest)
			req.AppId = tt.appID
			_, err := e.client().RestartApplication(req)
			if se := serverError(t, err); se.ErrorCode() != tt.wantRestart {
				t.Errorf("RestartApplication() = %s, want %s", se.ErrorCode(), tt.wantRestart)
			}
		})
	}
}

func TestEventLogRecordsCallsAndTransitions(t *testing.T) {
	e := newEnv(t, Config{Apps: []AppSpec{{AppID: appA, Instances: 1, RestartTime: 10 * time.Second}}})
	coID, err := e.restart(e.client(), appA, e.instanceIDs(appA)[0])
	if err != nil {
		t.Fatalf("RestartInstances() = %v", err)
	}
	_, _ = e.restart(e.client(), appA, e.instanceIDs(appA)[0])
	e.clk.Advance(10 * time.Second)
	var got []string
	for _, ev := range e.srv.Events() {
		if ev.ChangeOrderID != coID && ev.Action != "RestartInstances" {
			continue
		}
		got = append(got, ev.Action+":"+ev.Code)
	}
	want := []string{"ChangeOrderStatus:0", "RestartInstances:200", "RestartInstances:Application.ChangerOrderRunning", "ChangeOrderStatus:1", "ChangeOrderStatus:2"}
	if !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}
