// Package sae is the SAE (Serverless App Engine, OpenAPI 2019-05-06) client:
// it implements jobs.SAE on the official SDK
// (github.com/aliyun/alibaba-cloud-sdk-go/services/sae), classifies every
// outcome in one place (Classify), keeps credentials out of every text
// (Redact) and spends the account's call budget through one shared token
// bucket (Limiter).
//
// # Calls
//
// Each operation builds the SDK's typed request (sae.Create…Request: ROA
// signing, paths, query parameters) and sends it with the SDK's DoAction,
// but hands it a raw response type whose IsSuccess is always true. The SDK
// therefore never builds an errors.ServerError — which panics on a numeric
// "Code" — and never runs its fuzzy decoder; the client gets the HTTP status,
// headers and body and decodes them itself, leniently (strings and numbers
// both ways, "Success":"false"), so that only a wrong shape is an error.
//
// Endpoint: Region gives https://sae.<region>.aliyuncs.com (the SDK's own
// rule; HTTPS is forced, the SDK's default is HTTP). Config.Endpoint
// overrides it with an absolute http(s)://host[:port] URL whose scheme
// decides; host and port are set separately on each request (a Domain
// carrying ":port" makes the SDK build an invalid URL). Credentials: the
// SDK's default chain (environment, OIDC/RRSA, CLI profile, ECS RAM role)
// unless a test passes a provider; nothing is read from our files or flags.
// SDK AutoRetry is off: the SDK would resend a RestartInstances after a 5xx.
//
// Gotcha: the SDK prints request headers, including x-acs-security-token,
// to stdout when the environment has DEBUG=sdk at start-up. Never set it in
// production.
//
// # Concurrency
//
// The SDK's client is not safe for concurrent use (each call rewrites its
// http.Client timeout and its transport's DialContext). A Client keeps a pool
// of Config.PoolSize (default 4) SDK clients; a call borrows one for its
// duration, so a slow call (up to Timeout, 10 s) holds one slot, not the
// whole client as a mutex would. The SDK clients share one http.Transport
// (one connection pool) behind a per-client wrapper that is not an
// *http.Transport, which makes the SDK leave it alone; the wrapper carries
// the caller's context into the request (the SDK's DoAction takes none) and
// records whether the request was written, telling an ambiguous mutation
// from one never sent. The credentials provider is shared and locked (the
// SDK's default chain caches without locks). Building SDK clients is
// serialised (the SDK lazily writes a package-level endpoint map).
//
// # Metadata cache
//
// An app's group IDs (DescribeApplicationGroups) and identity
// (DescribeApplicationConfig) are reused for Config.MetadataTTL (default
// 10 minutes): every health gate lists instances, and without the cache each
// listing would cost one more call of the account's 60 per minute. A group
// added within the TTL is seen at the next read; a cached group SAE no longer
// knows (InvalidParameter.Obviously) makes the listing read the groups again.
//
// # Classification (Classify)
//
// The code is read from the body's ErrorCode, then Code (numeric statuses
// such as "400" or 400 are ignored), then searched for in Message. A 2xx is
// a failure when Success is false, or when Success is absent and an error
// code or a numeric Code >= 400 is present (SAE may answer a business error
// as 200 with Success:false).
//
//	class           codes / conditions
//	lock            Application.ChangerOrderRunning
//	retryable       System.Upgrading, Application.InvalidStatus, Throttling,
//	                Throttling.User, Rejected.Throttling, any *Throttling*,
//	                ServiceUnavailable / InternalError / other 5xx and 429 on a
//	                read, transport errors on a read, a transport error of a
//	                mutation that was never sent (dial, DNS), an unreadable 2xx
//	                on a read (HTML, truncated JSON, empty)
//	ambiguous       a mutation (anything but Describe*/List*/Get*/Query*)
//	                whose request was sent and whose answer is a timeout, a
//	                lost connection, a 5xx (ServiceUnavailable, InternalError,
//	                HTML 502), or an unreadable or wrongly shaped 2xx
//	not_deployed    Application.NotDeployYet
//	stale_instances InvalidParameter.Obviously on RestartInstances
//	account         user.indebt, NoComputeResourceQuota.Exceed,
//	                NoComputeResourceQuota.User.Exceed, InvalidAccessKeyId.*,
//	                InvalidSecurityToken.*, SignatureDoesNotMatch,
//	                IncompleteSignature, InvalidTimeStamp.Expired (its message
//	                says "host clock off by N", from the answer's Date header
//	                against the wall clock), InvalidTimeStamp.Format, and
//	                CredentialsUnavailable (the SDK could not sign: the
//	                default chain found no credentials; nothing was sent)
//	fatal           InvalidApplication.NotFound, InvalidParameter.* (NotEmpty,
//	                WithMessage, Obviously elsewhere), NoComputeResourceQuota.App.Exceed,
//	                InvalidAppId.NotFound, InvalidChangeOrder.NotFound,
//	                Resouce.no.permission, SignatureNonceUsed, ContentMD5NotMatched
//	unknown         anything else, e.g. a new code, a 4xx without a code, a
//	                wrongly shaped 2xx on a read (Code MalformedResponse)
//
// SAE's code and (redacted) message are kept in the *jobs.SAEError; codes
// we assign are "transport", "MalformedResponse" and "CredentialsUnavailable".
// DescribeChangeOrder's FinishTime is the last pipeline's UpdateTime once the
// change order is terminal (2, 3, 6, 10); its epoch-ms pipeline times also
// correct CreateTime's zone when the assumed one is impossible. Classify is pure and
// fuzzed (FuzzClassify: no panic, a class for every failure, no leak).
//
// # Retries: the caller's job
//
// The client never retries a retryable error: the rollout engine (jobs)
// owns retry and backoff (3 s doubling to 60 s, ±20%, inside its window),
// so there is one place that decides and no multiplied backoff. It should
// wait at least SAEError.RetryAfter (x-acs-retry-after) after Throttling.
// The only repeats inside the client are the ambiguous-submit resolution
// below (its lookups, up to 3 times with Config.Backoff, and one resubmit).
//
// # Quota
//
// SAE allows 60 calls per minute per account for all its APIs together,
// shared with deploys, Terraform and the console. A Limiter is a token bucket
// (golang.org/x/time/rate, driven in the Clock's time so an emulated run
// speeds it up) of DefaultQuotaPerMinute = 30 per minute and burst 3 by
// default; create one per account and pass it to every Client of that
// account, whatever the region. Every HTTP call takes a token first. A
// Throttling answer pauses the whole bucket for the server's
// x-acs-retry-after, or 5 s (capped at 1 min): the budget is being spent
// elsewhere too. Waits are counted (Stats, onWait).
//
// # Ambiguous submits
//
// RestartInstances is never retried blindly. When a submit's outcome is
// ambiguous, FindRestartChangeOrder looks for the change order it may have
// created: DescribeApplicationStatus.LastChangeOrderId first, then the
// ListChangeOrders(CoType=CoRestartInstances) items (first page, and the last
// one for a long history since SAE's order is undocumented) whose CreateTime
// is in the window, each checked with DescribeChangeOrder (list items carry no
// targets). A match is a CoRestartInstances of the app whose CoTargets equal
// the batch as a set and whose CreateTime — whole seconds, no zone — lies in
// [submit − MatchSlack, now + MatchSlack] read in COTimeLocation (default
// Asia/Shanghai) or in UTC; the upper bound stops an old Beijing time read as
// UTC from matching. Found: its ID is returned. Positively absent: one
// resubmit, under the same rule; if that meets the lock, the lookup runs once
// more (the first change order may have surfaced late). Unable to tell (reads
// failing, an unreadable CreateTime, too many candidates): ClassAmbiguous.
// SAE's one-change-order-per-app lock is the last guard: a late first change
// order makes a resubmit fail with Application.ChangerOrderRunning instead of
// restarting twice.
//
// # Assumptions (facts §9, unconfirmed)
//
//   - The business-error body: the code in Code or in ErrorCode beside
//     "Code":"400"; HTTP 4xx or 200 with Success:false. Both are handled and
//     the end-to-end tests run against the emulator in all four modes.
//   - CreateTime's zone: Beijing time assumed, UTC also accepted.
//   - ListChangeOrders' order (newest first assumed; the last page is read
//     too) and that it honours CoType (CoTypeCode is checked anyway).
//   - SAE honours PageSize 100 for instances and applications; TotalSize,
//     when present, decides the end of a listing anyway, and a page bringing
//     nothing new ends it (a server ignoring CurrentPage cannot loop us).
//   - Per-API QPS limits beyond 60 calls/min/account are unknown.
//   - Whether restarts keep instance IDs is irrelevant here: the client lists
//     what SAE lists, deduplicated by ID.
//   - InvalidSecurityToken.* (an expired STS token) and InvalidTimeStamp.Format
//     are treated as account errors; the SAE documents do not list them.
package sae
