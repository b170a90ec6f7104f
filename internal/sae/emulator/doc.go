// Package emulator is a faithful emulator of the Alibaba Cloud Serverless App
// Engine (SAE) OpenAPI, version 2019-05-06, for the operations a restart
// scheduler uses. It is a real HTTP server: the official Go SDK
// (services/sae) and the independent npm client @alicloud/pop-core talk to
// it over plain HTTP exactly as they would talk to sae.<region>.aliyuncs.com.
// It is the ground truth for the project's tests, benchmarks and
// `scheduler demo`, so it follows SAE's documented behaviour (see
// shared/reference/sae-api-facts.md, "facts" below), not what a client
// expects. Where SAE's behaviour is unconfirmed, every variant is a mode.
//
// # A call's way through the emulator
//
//  1. Route by METHOD + path (never by x-acs-action, which CommonRequests and
//     pop-core omit). Unknown routes answer 404 InvalidAction.NotFound.
//  2. Authenticate (POP gateway; errors in the POP shape: string Code,
//     RequestId, Message, HostId, Recommend; never Success or ErrorCode):
//     - no Authorization, or not "acs AK:SIG": 400 IncompleteSignature
//     (chosen over MissingAuthorization: the SDK groups it with SignatureDoesNotMatch);
//     - empty AK (a bearer-token request) or unknown AK: 404 InvalidAccessKeyId.NotFound;
//     - STS AK ("STS.xxx", Config.STSTokens) without x-acs-security-token:
//     404 InvalidAccessKeyId.NotFound (assumed); with another token: 400
//     InvalidSecurityToken.MismatchWithAccessKey (assumed; the token is not echoed);
//     - Date missing or unparsable: 400 InvalidTimeStamp.Format; more than 15
//     minutes off the REAL clock (never the emulated one): 400 InvalidTimeStamp.Expired;
//     - Content-MD5 present and not the body's: 400 ContentMD5NotMatched;
//     - signature (facts §1.3): METHOD, Accept, Content-MD5, Content-Type,
//     Date lines, then every x-acs-* header (names lower-cased, Go
//     canonicalises them; values trimmed, sorted by name), then the path and
//     the decoded query sorted by key. Accepted variants: absent headers as
//     empty lines (documented; what pop-core does without Content-Type) or
//     skipped (the SDK rule), and empty query values as "key" (Go SDK) or
//     "key=" (pop-core, tea). A mismatch is 400 SignatureDoesNotMatch whose
//     message ends "server string to sign is:" + the documented variant —
//     byte-for-byte the Go SDK's own string for a request it signed, so the
//     SDK's Recommend says InvalidAccessKeySecret. Like SAE, that message
//     carries an x-acs-security-token line if one was sent; redacting it is
//     the client's job. The token appears nowhere else (events, logs, other errors);
//     - a replayed x-acs-signature-nonce (within the Date window): 400 SignatureNonceUsed.
//     The nonce, x-acs-region-id and x-acs-action are never required.
//  3. Throttle: Config.QuotaPerMinute calls (default 60, "单用户一分钟60次",
//     facts §4.4) per AccessKeyId in any sliding emulated minute, all actions
//     together; the next call is 400 Throttling.User (POP shape) with
//     x-acs-retry-after = milliseconds (emulated) until a slot frees.
//     Rejected calls do not use the budget.
//  4. Faults (Fault, AppSpec.Faults, Server.InjectFault), see below.
//  5. Carry the call out on the model and answer
//     {"RequestId","TraceId","Message":"success","Code":"200","Success":true,"Data":...},
//     with JSON arrays exactly where the old SDK decodes arrays
//     (DescribeApplicationGroups' Data, Instances, ChangeOrderList,
//     DescribeChangeOrder's Pipelines and CoTargets) and ListChangeOrders
//     items' Pipelines as a STRING holding the pipelines' JSON (the old SDK's
//     type; the content is an assumption).
//
// # Routes
//
//	PUT /pop/v1/sam/app/restartInstances             RestartInstances (AppId, InstanceIds)
//	PUT /pop/v1/sam/app/restartApplication           RestartApplication (AppId, MinReadyInstances=1, MinReadyInstanceRatio)
//	GET /pop/v1/sam/changeorder/DescribeChangeOrder  DescribeChangeOrder (ChangeOrderId)
//	GET /pop/v1/sam/changeorder/ListChangeOrders     ListChangeOrders (AppId, CoType, CoStatus, Key, CurrentPage, PageSize=10; newest first)
//	PUT /pop/v1/sam/changeorder/AbortChangeOrder     AbortChangeOrder (ChangeOrderId)
//	GET /pop/v1/sam/app/describeApplicationStatus    DescribeApplicationStatus (AppId)
//	GET /pop/v1/sam/app/describeApplicationInstances DescribeApplicationInstances (AppId, GroupId required; CurrentPage 1-based, PageSize=10, Reverse, InstanceId, PipelineId)
//	GET /pop/v1/sam/app/describeApplicationGroups    DescribeApplicationGroups (AppId, CurrentPage, PageSize)
//	GET /pop/v1/sam/app/listApplications             ListApplications (NamespaceId, AppName substring, CurrentPage, PageSize=10)
//	GET /pop/v1/sam/app/describeApplicationConfig    DescribeApplicationConfig (AppId)
//
// Business errors use the documented codes, messages and statuses
// (restart-instances.md, facts §4.3): InvalidParameter.NotEmpty for a
// missing required parameter; InvalidApplication.NotFound (400) for an
// unknown app, except ListChangeOrders' InvalidAppId.NotFound (404);
// InvalidChangeOrder.NotFound; InvalidParameter.Obviously for an InstanceId
// that is not the app's (or an unknown GroupId, a bad number); Application.NotDeployYet;
// Application.InvalidStatus for restarting a stopped app;
// Application.ChangerOrderRunning while any change order of the app is not
// terminal. Aborting a finished change order is assumed to be
// InvalidParameter.WithMessage.
//
// # Business-error modes (facts §4.2, §9: UNCONFIRMED)
//
//   - Config.ErrorCodeIn: CodeInCode (default) puts the identifier in
//     "Code" ("Code":"Application.ChangerOrderRunning", no ErrorCode);
//     CodeInErrorCode sends "Code":"400" (the HTTP status) and
//     "ErrorCode":"Application.ChangerOrderRunning".
//   - Config.BusinessErrorStatus: HTTP4xx (default, as documented) or HTTP200
//     (200 with "Success":false, which the SDK returns without an error).
//
// Both bodies carry RequestId, TraceId, Message, "Success":false and "Data":null.
// POP gateway errors (auth, Throttling*, 5xx) keep the POP shape in every mode.
//
// # The model
//
// Apps have groups (default one "_DEFAULT_GROUP") and instances (pods named
// <app-name>-<app-id>-<10-char hash>-<5-char suffix>, CreateTimeStamp in ms).
// A change order (CO) has Status (0 READY, 1 RUNNING, 2 SUCCESS, 3 FAIL, 6
// ABORT, 8 WAIT_BATCH_CONFIRM, 10 SYSTEM_FAIL, 11 WAIT_APPROVAL; the strings
// are DescribeApplicationStatus.LastChangeOrderStatus, facts §5.1),
// SubStatus, CoTypeCode (CoRestartInstances, CoRestartApplication, CoDeploy),
// CoTargets (the instance IDs asked for), one Pipeline per batch,
// CurrentPipelineId and BatchCount. CreateTime is "2006-01-02 15:04:05" in
// Asia/Shanghai wall time, whole seconds, no zone (ASSUMPTION: SAE's zone is
// not documented; Shanghai is UTC+8 without DST, so a fixed offset is used).
//
// A restart CO runs its batches one after the other, each AppSpec.RestartTime
// long (varied per change order within ±AppSpec.RestartJitter, from the seed) (RestartInstances: ASSUMED one batch holding every target, facts §9;
// RestartApplication: batches of len-MinReadyInstances, at least one). Within
// a batch of duration D starting at b (the first 10 % of the first batch is
// the CO's Status 0 preparing phase):
//
//	b+0.1D  CO Status 1; pipeline running; targets Terminating (counted as restarted)
//	b+0.3D  Pending / NotCheckedYet — in place: same ID, Restarts+1, CreateTimeStamp=now;
//	        replace mode: the old pod disappears, a new ID takes its place
//	b+0.5D  PodInitializing
//	b+0.8D  Running / NotCheckedYet
//	b+1.0D  Healthy; pipeline Status 2; after the last batch the CO is Status 2
//
// Whether SAE keeps instance IDs across a restart is UNCONFIRMED (facts §5.4):
// Config.ReplaceInstanceIDs / AppSpec.ReplaceInstanceIDs choose. Restarts and
// InstanceState.OriginalID follow replacements back to the original ID.
// DescribeApplicationInstances sorts by container status in the documented
// Reverse=false order (Error … Pending … Terminating … PodInitializing …
// Running), so pages shift while a restart is under way, as they may on SAE.
//
// The lock: one non-terminal CO per app (Status 0, 1, 8, 9, 11, 12, or 1 with
// SubStatus 1); any other CO-creating call answers
// Application.ChangerOrderRunning. DescribeApplicationStatus shows the
// app's latest CO (LastChangeOrderId/Running/Status; SubStatus
// "RUNNING_BUT_HAS_ERROR" while a CO is stuck with SubStatus 1, else
// "NORMAL" — the casing TF compares differs, facts §5.3).
// AbortChangeOrder sets Status 6 at once and frees the lock (anyone's CO
// may be aborted); batches not yet started never start, pods already
// restarting finish their restart.
//
// Foreign change orders (AppSpec.Deploys): someone else's CoDeploy becomes
// due After the emulator started, starts as soon as the lock is free (its
// owner retries), runs Duration (Status 0 for the first 10 %, then 1) and
// ends with Status (default 2). It does not touch instances (a
// simplification: only its lock matters to a restart scheduler).
//
// # Faults
//
// A Fault matches an action ("" any), an app (AppId, or the app of
// ChangeOrderId), an emulated window [After, Until) since start, and Count
// calls (0 = forever). Request faults: code (a documented code with its
// status, message and shape), http5xx (503 ServiceUnavailable or 500
// InternalError), html502 (an HTML page), latency (real-time delay, then a
// normal answer; several add up), numeric_code (400 with "Code":400 — the
// Go SDK panics on it), truncated_json and object_for_array (the call is
// carried out, the 200 body is broken), accept_then_5xx (carried out — a
// restart's CO exists — then 503: the ambiguous case) and accept_then_drop
// (carried out, connection closed with no answer). Change-order faults,
// consumed by the next CO-creating call that matches: co_fail (first batch
// fails at its end: Status 3, its pods end ReadinessUnhealthy),
// co_system_fail (Status 10 at b+0.1D, no pod touched), co_stuck_substatus
// (first batch fails, CO stays Status 1 with SubStatus 1 forever),
// co_wait_confirm (Status 8 at b+0.1D before any pod is touched, forever)
// and co_wait_approval (Status 11 from creation, forever); "forever" means
// until AbortChangeOrder. ConfirmPipelineBatch is not modelled.
//
// # Time
//
// Every model time (COs, instances, quota, fault windows, foreign deploys)
// comes from Config.Clock; only the Date-skew and nonce checks use the real
// clock. There are no goroutines: a queue of timed transitions is applied up
// to Clock.Now() on every call and inspection, so clock.Fake (tests) and
// clock.Scaled (benchmarks: a 60 s restart takes 60/Factor real seconds)
// both work. Latency faults wait in real time.
//
// # Inspection
//
// ChangeOrders, Restarts, Calls, Events, Instances and AppIDs report what
// happened, for tests asserting invariants (which instances each CO
// restarted, overlaps, rejected calls, calls per action). Calls to unknown
// routes count under "UnknownRoute". Events holds every call (Code "200", the
// error code, or a fault marker such as "html502", "dropped") and every CO
// status change (Action "ChangeOrderStatus", Code the new status).
//
// # Modelled versus assumed (facts §9)
//
// Modelled from documentation or verified SDK behaviour: ROA signing and the
// SDK's and pop-core's wire formats; POP error shapes and codes; the
// RestartInstances error table; the success envelope and array/string
// shapes the old SDK decodes; the 60 calls/min/user quota; the CO status
// set, SubStatus 1 and CoTypeCodes; the one-CO-per-app lock; instance
// container and health states; paging (1-based, PageSize 10).
// Assumed (a mode where it matters): the business-error body and status
// (modes), instance IDs after a restart (mode), RestartInstances as one batch,
// the CreateTime zone, the STS-without-token and bearer answers, the
// ListChangeOrders Pipelines string content, the abort-of-finished error, the
// instance phase timings, SubStatus casing, the emulated x-acs-retry-after.
package emulator
