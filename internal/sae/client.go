package sae

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/responses"
	saesdk "github.com/aliyun/alibaba-cloud-sdk-go/services/sae"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
	"github.com/sae-scheduler/sae-scheduler/internal/jobs"
)

var _ jobs.SAE = (*Client)(nil)

// Defaults.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultPoolSize   = 4
	DefaultMatchSlack = 10 * time.Second
	// DefaultMetadataTTL is how long an app's group IDs and identity are
	// reused before they are read again (see Config.MetadataTTL).
	DefaultMetadataTTL = 10 * time.Minute
	connectTimeout     = 5 * time.Second
)

// Config configures a Client. Region is required; everything else has a default.
type Config struct {
	// Region is the SAE region, e.g. cn-hangzhou; it gives the public
	// endpoint https://sae.<region>.aliyuncs.com.
	Region string
	// Endpoint optionally overrides the endpoint with an absolute
	// http(s)://host[:port] URL (the emulator, a VPC endpoint); its scheme
	// decides between HTTP and HTTPS.
	Endpoint string
	// Credentials is for tests. nil means the SDK's default chain only:
	// ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET/_SECURITY_TOKEN, OIDC/RRSA, the CLI
	// profile, the ECS RAM role. The Client never reads credentials from
	// anywhere else.
	Credentials credentials.CredentialsProvider
	// Limiter is the account's shared quota bucket. nil means a private
	// NewLimiter(DefaultQuotaPerMinute, DefaultBurst, Clock, nil); share one
	// between every Client of the same account.
	Limiter *Limiter
	// Clock drives the lookup backoffs, a default Limiter, and the submit
	// time an ambiguous RestartInstances is matched against SAE's CreateTime,
	// so it must be the clock SAE's times are in (the emulator's in tests).
	// nil means clock.Real{}.
	Clock clock.Clock
	// Timeout bounds one HTTP call, headers and body (default 10s).
	Timeout time.Duration
	// OnRequest, if not nil, is called after every HTTP call with the action,
	// a bounded code (SAE's code when IsKnownCode, "200", "transport",
	// "MalformedResponse", or "other") and the call's duration.
	OnRequest func(action, code string, d time.Duration)
	// Logger receives debug lines per call and warnings about ambiguous
	// submits; nil discards. Nothing logged carries credentials.
	Logger *slog.Logger
	// COTimeLocation is the zone of SAE's zone-less change-order CreateTime
	// ("2020-12-17 21:06:45"). Default Asia/Shanghai: SAE is operated from
	// China and its documented examples are Beijing time, but this is not
	// confirmed for every region, so matching also tries UTC (with slack).
	COTimeLocation *time.Location
	// PoolSize is how many SDK clients (so how many concurrent calls) the
	// Client keeps (default 4).
	PoolSize int
	// MatchSlack widens the CreateTime window when looking for the change
	// order an ambiguous submit may have created (default 10s).
	MatchSlack time.Duration
	// Backoff gives the wait before the n-th (n >= 1) retry of a lookup while
	// resolving an ambiguous submit; nil means 3s doubling to 60s, ±20%.
	Backoff func(n int) time.Duration
	// MetadataTTL is how long an app's group IDs (DescribeApplicationGroups)
	// and identity (DescribeApplicationConfig) are reused (default 10m; < 0
	// disables the cache). Every instance listing would otherwise cost one
	// more call of the account's 60 per minute; a group added within the TTL
	// is seen at the next read.
	MetadataTTL time.Duration
}

// Client is an SAE client on the official SDK that implements jobs.SAE. It is
// safe for concurrent use: each call borrows one of PoolSize SDK clients
// (the SDK's client mutates itself on every call) and every HTTP call first
// takes a token from the account's Limiter.
type Client struct {
	region    string
	scheme    string // "https" or "http"
	domain    string // "" for the public endpoint
	port      string
	clk       clock.Clock
	lim       *Limiter
	conns     chan *sdkConn
	onRequest func(action, code string, d time.Duration)
	log       *slog.Logger
	coLoc     *time.Location
	slack     time.Duration
	backoff   func(int) time.Duration
	meta      *metaCache
}

// sdkConn is one SDK client with its own RoundTripper; a caller owns it
// exclusively between taking it from and returning it to the pool.
type sdkConn struct {
	cli *saesdk.Client
	rt  *ctxTransport
}

var regionRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// sdkInitMu serialises SDK client construction: sae.NewClientWithOptions
// lazily writes a package-level endpoint map.
var sdkInitMu sync.Mutex

// New returns a Client. It returns an error for an empty or malformed region,
// an endpoint that is not an absolute http(s)://host[:port] URL, or an SDK
// initialisation failure. It makes no network call.
func New(cfg Config) (*Client, error) {
	if cfg.Region == "" {
		return nil, errors.New("sae client: region is required")
	}
	if !regionRE.MatchString(cfg.Region) {
		return nil, fmt.Errorf("sae client: invalid region %q", cfg.Region)
	}
	c := &Client{
		region:    cfg.Region,
		scheme:    "https",
		clk:       cfg.Clock,
		lim:       cfg.Limiter,
		onRequest: cfg.OnRequest,
		log:       cfg.Logger,
		coLoc:     cfg.COTimeLocation,
		slack:     cfg.MatchSlack,
		backoff:   cfg.Backoff,
	}
	if cfg.Endpoint != "" {
		scheme, host, port, err := parseEndpoint(cfg.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("sae client: %w", err)
		}
		c.scheme, c.domain, c.port = scheme, host, port
	}
	if c.clk == nil {
		c.clk = clock.Real{}
	}
	if c.lim == nil {
		c.lim = NewLimiter(DefaultQuotaPerMinute, DefaultBurst, c.clk, nil)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.coLoc == nil {
		c.coLoc = shanghai()
	}
	if c.slack <= 0 {
		c.slack = DefaultMatchSlack
	}
	if c.backoff == nil {
		c.backoff = DefaultBackoff
	}
	c.meta = newMetaCache(cfg.MetadataTTL, c.clk)
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	poolSize := cfg.PoolSize
	if poolSize <= 0 {
		poolSize = DefaultPoolSize
	}

	var provider credentials.CredentialsProvider
	if cfg.Credentials != nil {
		provider = &lockedProvider{p: cfg.Credentials}
	} else {
		// One chain for every pooled SDK client, so that OIDC/ECS
		// credentials are fetched and cached once, not once per client.
		provider = &lockedProvider{p: credentials.NewDefaultCredentialsProvider()}
	}
	// One connection pool for all SDK clients. Each SDK client gets it behind
	// its own wrapper, which is not an *http.Transport: the SDK then leaves
	// it alone instead of rewriting DialContext/TLS on every call (a race).
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   connectTimeout,
		MaxIdleConnsPerHost:   poolSize,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
	}
	c.conns = make(chan *sdkConn, poolSize)
	for range poolSize {
		rt := &ctxTransport{base: base}
		conf := sdk.NewConfig().
			WithAutoRetry(false). // never: a retried RestartInstances could become two change orders
			WithMaxRetryTime(0).
			WithScheme(strings.ToUpper(c.scheme)).
			WithTimeout(timeout)
		conf.Transport = rt
		sdkInitMu.Lock()
		cli, err := saesdk.NewClientWithOptions(c.region, conf, provider)
		sdkInitMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("sae client: %w", redactedError{err})
		}
		cli.SetReadTimeout(timeout)
		cli.SetConnectTimeout(connectTimeout)
		c.conns <- &sdkConn{cli: cli, rt: rt}
	}
	return c, nil
}

// Region returns the client's region.
func (c *Client) Region() string { return c.region }

// Limiter returns the quota bucket the client draws from.
func (c *Client) Limiter() *Limiter { return c.lim }

// parseEndpoint validates an endpoint override and splits it into the SDK's
// separate Scheme, Domain and Port (a Domain carrying ":port" breaks its URL).
func parseEndpoint(raw string) (scheme, host, port string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", fmt.Errorf("invalid endpoint %q: want an absolute http:// or https:// URL: %w", raw, err)
	}
	scheme = strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", "", "", fmt.Errorf("invalid endpoint %q: want an absolute http:// or https:// URL", raw)
	}
	if u.Hostname() == "" {
		return "", "", "", fmt.Errorf("invalid endpoint %q: no host", raw)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", "", "", fmt.Errorf("invalid endpoint %q: want scheme://host[:port] only", raw)
	}
	port = u.Port()
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", "", "", fmt.Errorf("invalid endpoint %q: bad port", raw)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "", "", "", fmt.Errorf("invalid endpoint %q: empty port", raw)
	}
	host = u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6: the SDK formats scheme://Domain:Port
	}
	return scheme, host, port, nil
}

// shanghai returns Asia/Shanghai, or UTC+8 without the tz database (the
// zone has had no DST since 1991, so both are the same).
func shanghai() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("Asia/Shanghai", 8*3600)
}

// DefaultBackoff is 3s doubling per attempt up to 60s, with ±20% jitter.
func DefaultBackoff(n int) time.Duration {
	d := 3 * time.Second
	for i := 1; i < n && d < time.Minute; i++ {
		d *= 2
	}
	d = min(d, time.Minute)
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(d) * jitter)
}

// lockedProvider serialises a credentials provider: the SDK's default chain
// and its ECS/OIDC providers cache state without locks, and all pooled SDK
// clients share one.
type lockedProvider struct {
	mu sync.Mutex
	p  credentials.CredentialsProvider
}

func (l *lockedProvider) GetCredentials() (*credentials.Credentials, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.p.GetCredentials()
}

func (l *lockedProvider) GetProviderName() string { return l.p.GetProviderName() }

// callState is one HTTP call's context, whether the SDK got as far as the
// transport, and whether the request was written.
type callState struct {
	ctx     context.Context
	reached atomic.Bool
	wrote   atomic.Bool
}

// ctxTransport carries the caller's context into the SDK's HTTP request (the
// SDK's DoAction takes none) and records whether the request was written,
// which tells a lost mutating call (ambiguous) from one never sent.
type ctxTransport struct {
	base http.RoundTripper
	cs   *callState // set by the conn's owner before each call
}

func (t *ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	cs := t.cs
	if cs == nil {
		return t.base.RoundTrip(req)
	}
	cs.reached.Store(true)
	// Derive from the request's context, which carries http.Client.Timeout.
	ctx, cancel := context.WithCancelCause(req.Context())
	stop := context.AfterFunc(cs.ctx, func() { cancel(context.Cause(cs.ctx)) })
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			cs.wrote.Store(true)
		}
	}}
	resp, err := t.base.RoundTrip(req.WithContext(httptrace.WithClientTrace(ctx, trace)))
	if err != nil {
		stop()
		cancel(nil)
		return nil, err
	}
	resp.Body = &closeHook{ReadCloser: resp.Body, done: func() { stop(); cancel(nil) }}
	return resp, nil
}

// closeHook runs done once the body is closed (the SDK closes it after reading).
type closeHook struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (c *closeHook) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(c.done)
	return err
}

// rawResponse hands us the SDK's raw status, headers and body. Its IsSuccess
// is always true so that the SDK never builds an errors.ServerError, which
// panics on a numeric "Code"; its UnmarshalJSON ignores the body, which we
// decode ourselves, leniently.
type rawResponse struct {
	*responses.BaseResponse
}

func (r *rawResponse) IsSuccess() bool { return true }

// UnmarshalJSON implements json.Unmarshaler and does nothing.
func (r *rawResponse) UnmarshalJSON([]byte) error { return nil }

// call performs one HTTP call of req: it takes a quota token, borrows an SDK
// client, sends, and classifies. It returns the body of a successful call, or
// an error wrapping *jobs.SAEError, or ctx.Err() if ctx ended before the
// request could have reached SAE. A mutating call whose ctx ends after it was
// sent gives a ClassAmbiguous *jobs.SAEError wrapping ctx.Err().
func (c *Client) call(ctx context.Context, req requests.AcsRequest, roa *requests.RoaRequest) ([]byte, error) {
	action := req.GetActionName()
	if err := c.lim.Wait(ctx); err != nil {
		return nil, err
	}
	var conn *sdkConn
	select {
	case conn = <-c.conns:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { c.conns <- conn }()

	req.SetScheme(c.scheme)
	if c.domain != "" {
		req.SetDomain(c.domain)
		roa.Port = c.port
	}
	cs := &callState{ctx: ctx}
	conn.rt.cs = cs
	raw := &rawResponse{BaseResponse: &responses.BaseResponse{}}
	start := time.Now()
	err := conn.cli.DoAction(req, raw)
	d := time.Since(start)
	conn.rt.cs = nil

	status := raw.GetHttpStatus()
	var se *jobs.SAEError
	if status == 0 {
		// No response: the error is from signing, credentials or transport.
		if err == nil {
			err = errors.New("no response")
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			c.report(action, CodeTransport, d, nil)
			if isMutating(action) && cs.wrote.Load() {
				return nil, &jobs.SAEError{Class: jobs.ClassAmbiguous, Action: action, Code: CodeTransport,
					Message: "cancelled after the request was sent", Err: ctxErr}
			}
			return nil, ctxErr
		}
		if !cs.reached.Load() {
			// Failed before any I/O: the SDK could not sign, almost always
			// because the credential chain found nothing. No call of this
			// account can succeed.
			se = &jobs.SAEError{Class: jobs.ClassAccount, Action: action, Code: CodeCredentials,
				Message: Redact(truncate(err.Error(), 512)), Err: redactedError{err}}
		} else {
			if !cs.wrote.Load() {
				err = fmt.Errorf("%w: %w", errNotSent, err)
			}
			se = Classify(action, 0, nil, err)
		}
	} else {
		// A decode error from the SDK is irrelevant: we decode the body.
		se = Classify(action, status, raw.GetHttpContentBytes(), nil)
		if se != nil {
			c.enrich(se, http.Header(raw.GetHttpHeaders()))
		}
	}
	if se == nil {
		c.report(action, "200", d, nil)
		return raw.GetHttpContentBytes(), nil
	}
	c.report(action, se.Code, d, se)
	return nil, se
}

// report calls the OnRequest hook and logs one call.
func (c *Client) report(action, code string, d time.Duration, se *jobs.SAEError) {
	label := code
	if label != "200" && label != CodeTransport && label != CodeMalformed && label != CodeCredentials && !IsKnownCode(label) {
		label = "other"
	}
	if c.onRequest != nil {
		c.onRequest(action, label, d)
	}
	if se == nil {
		c.log.Debug("sae call", "action", action, "code", label, "duration", d)
		return
	}
	c.log.Debug("sae call failed", "action", action, "code", label, "class", string(se.Class),
		"http_status", se.HTTPStatus, "request_id", se.RequestID, "duration", d, "timeout", isTimeout(se.Err))
}

// enrich adds what only the response headers tell: the server's retry-after
// hint (and the account-wide pause it implies) and the host's clock skew.
func (c *Client) enrich(se *jobs.SAEError, h http.Header) {
	if strings.Contains(se.Code, "Throttling") {
		se.RetryAfter = retryAfter(h)
		pause := se.RetryAfter
		if pause <= 0 {
			pause = defaultThrottlePause
		}
		c.lim.Pause(pause)
	}
	if se.Code == "InvalidTimeStamp.Expired" {
		// The skew check is the wall clock's, never an emulated one.
		if srv, err := http.ParseTime(h.Get("Date")); err == nil {
			skew := time.Since(srv).Round(time.Second)
			dir := "ahead of"
			if skew < 0 {
				dir, skew = "behind", -skew
			}
			se.Message = fmt.Sprintf("host clock off by %s (%s SAE's Date %s): %s",
				skew, dir, srv.UTC().Format(time.RFC3339), se.Message)
		} else {
			se.Message = "host clock off by an unknown amount (no server Date): " + se.Message
		}
	}
}

// retryAfter reads x-acs-retry-after (milliseconds), else Retry-After (seconds).
func retryAfter(h http.Header) time.Duration {
	if v := strings.TrimSpace(h.Get("x-acs-retry-after")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 1e9 {
			return min(time.Duration(ms*float64(time.Millisecond)), maxThrottlePause)
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s > 0 {
			return min(time.Duration(s)*time.Second, maxThrottlePause)
		}
	}
	return 0
}
