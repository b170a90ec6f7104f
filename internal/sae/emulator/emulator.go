package emulator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/sae-scheduler/sae-scheduler/internal/clock"
)

// ErrorCodeMode says where a business error's identifier goes in the body
// (facts §4.2/§9: UNCONFIRMED, so both variants exist).
type ErrorCodeMode int

const (
	// CodeInCode puts the identifier in "Code" ("Code":"Application.ChangerOrderRunning") and sends no ErrorCode.
	CodeInCode ErrorCodeMode = iota
	// CodeInErrorCode puts the HTTP status in "Code" ("Code":"400") and the identifier in "ErrorCode".
	CodeInErrorCode
)

func (m ErrorCodeMode) String() string {
	if m == CodeInErrorCode {
		return "errorcode"
	}
	return "code"
}

// BusinessStatusMode says which HTTP status a business error (not a POP
// gateway error) is answered with (facts §9: UNCONFIRMED).
type BusinessStatusMode int

const (
	// HTTP4xx answers with the documented status (mostly 400, 404 for InvalidAppId.NotFound).
	HTTP4xx BusinessStatusMode = iota
	// HTTP200 answers 200 with "Success":false; the SDK then returns no error.
	HTTP200
)

func (m BusinessStatusMode) String() string {
	if m == HTTP200 {
		return "200"
	}
	return "4xx"
}

// STSKey is the secret and security token of an STS AccessKeyId ("STS.xxx").
type STSKey struct {
	Secret string
	Token  string
}

// Config configures a Server. The zero value of every field has a documented default.
type Config struct {
	// AccessKeys maps a static AccessKeyId to its secret.
	AccessKeys map[string]string
	// STSTokens maps an STS AccessKeyId to its secret and token; a request
	// signed with such a key must carry x-acs-security-token == Token.
	STSTokens map[string]STSKey
	// Clock gives the emulated time of change orders, instances, the quota
	// and faults (nil: clock.Real{}). The Date-skew check always uses the real time.
	Clock clock.Clock
	// Apps is the world the emulator starts with.
	Apps []AppSpec
	// QuotaPerMinute is the per-AccessKeyId budget of calls (all actions
	// together) in any sliding emulated minute: 0 means 60, < 0 unlimited.
	QuotaPerMinute int
	// ErrorCodeIn selects the business-error body shape.
	ErrorCodeIn ErrorCodeMode
	// BusinessErrorStatus selects the business-error HTTP status.
	BusinessErrorStatus BusinessStatusMode
	// ReplaceInstanceIDs is the default of AppSpec.ReplaceInstanceIDs: a
	// restart replaces the pod with a new ID (else it restarts in place).
	ReplaceInstanceIDs bool
	// Seed seeds every random choice (IDs), so runs are reproducible.
	Seed int64
	// Logf, when set, receives one line per request (never a credential).
	Logf func(format string, args ...any)
}

// ChangeOrderRecord is what happened to one change order.
type ChangeOrderRecord struct {
	ID         string
	AppID      string
	Type       string // CoTypeCode: CoRestartInstances, CoRestartApplication, CoDeploy
	Targets    []string
	Created    time.Time // emulated
	Started    time.Time // emulated time the first batch touched a pod (zero if never)
	Ended      time.Time // emulated time it reached a terminal status (zero while not terminal)
	Status     int       // current (final once Ended is set)
	SubStatus  int
	BatchCount int
	Foreign    bool // a deploy from AppSpec.Deploys, not created through the API
	Aborted    bool
}

// InstanceState is one live instance as DescribeApplicationInstances would show it.
type InstanceState struct {
	ID              string
	OriginalID      string // the ID of the instance this one replaced, transitively (itself if never replaced)
	GroupID         string
	ContainerStatus string
	HealthStatus    string
	Restarts        int64
	CreateTime      time.Time
}

// Event is one entry of the emulator's event log: a call (accepted or
// rejected) or a change-order status transition (Action "ChangeOrderStatus",
// Code the new numeric status).
type Event struct {
	Time          time.Time // emulated
	Action        string
	AppID         string
	ChangeOrderID string
	Code          string // "200", an error code, a fault marker, or a change-order status
	HTTPStatus    int
	Detail        string
}

// Server is the SAE OpenAPI emulator. It is an http.Handler and is safe for concurrent use.
type Server struct {
	cfg   Config
	clk   clock.Clock
	start time.Time // emulated time at New

	mu       sync.Mutex
	rng      *rand.Rand
	apps     map[string]*app
	appOrder []string
	cos      map[string]*changeOrder
	queue    eventQueue
	seq      uint64
	faults   []*faultState
	calls    map[string]int
	events   []Event
	quota    map[string][]time.Time // AccessKeyId -> accepted call times (emulated) within the last minute
	nonces   map[string]time.Time   // nonce -> real time it may be forgotten
	nextIP   int

	srvMu    sync.Mutex
	httpSrv  *http.Server
	listener net.Listener
}

// New builds a Server from cfg. It fails on an invalid app or fault spec.
func New(cfg Config) (*Server, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.QuotaPerMinute == 0 {
		cfg.QuotaPerMinute = 60
	}
	s := &Server{
		cfg:    cfg,
		clk:    cfg.Clock,
		rng:    rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x5ae5ae5ae)),
		apps:   map[string]*app{},
		cos:    map[string]*changeOrder{},
		calls:  map[string]int{},
		quota:  map[string][]time.Time{},
		nonces: map[string]time.Time{},
	}
	s.start = s.clk.Now()
	if err := validateApps(cfg.Apps); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, spec := range cfg.Apps {
		s.addAppLocked(spec)
	}
	return s, nil
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
// It returns the base URL, e.g. "http://127.0.0.1:18080", or the listen error.
func (s *Server) Start(addr string) (string, error) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.httpSrv != nil {
		return "", errors.New("emulator already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("emulator listen: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.httpSrv, s.listener = srv, ln
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// Close stops the listener started by Start; it is a no-op otherwise.
func (s *Server) Close() error {
	s.srvMu.Lock()
	srv := s.httpSrv
	s.httpSrv = nil
	s.srvMu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		// Latency faults may still hold connections; cut them.
		return srv.Close()
	}
	return nil
}

// InjectFault adds a fault at runtime. An invalid fault is ignored and reported through Logf.
func (s *Server) InjectFault(f Fault) {
	if err := f.validate(); err != nil {
		s.logf("emulator: ignoring fault: %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, newFaultState(f))
}

// ChangeOrders returns every change order ever created for the app, oldest first.
func (s *Server) ChangeOrders(appID string) []ChangeOrderRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.clk.Now())
	a := s.apps[appID]
	if a == nil {
		return nil
	}
	out := make([]ChangeOrderRecord, 0, len(a.cos))
	for _, co := range a.cos {
		out = append(out, co.record())
	}
	return out
}

// Restarts maps each original instance ID of the app to how many times it
// (or a replacement of it) was restarted. An instance counts as restarted
// once its batch began terminating it.
func (s *Server) Restarts(appID string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.clk.Now())
	a := s.apps[appID]
	if a == nil {
		return nil
	}
	out := make(map[string]int, len(a.restarts))
	for k, v := range a.restarts {
		out[k] = v
	}
	return out
}

// Calls returns how many calls of an action arrived (accepted and rejected).
// Calls to an unknown route count under "UnknownRoute".
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// Events returns a copy of the event log in order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.clk.Now())
	return append([]Event(nil), s.events...)
}

// Instances returns the app's live instances (as listed by DescribeApplicationInstances, all groups).
func (s *Server) Instances(appID string) []InstanceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.clk.Now())
	a := s.apps[appID]
	if a == nil {
		return nil
	}
	var out []InstanceState
	for _, p := range a.livePods("") {
		out = append(out, InstanceState{
			ID: p.id, OriginalID: p.origID, GroupID: p.groupID,
			ContainerStatus: p.status, HealthStatus: p.health,
			Restarts: p.restarts, CreateTime: p.created,
		})
	}
	return out
}

// AppIDs returns the IDs of every app, in spec order.
func (s *Server) AppIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.appOrder...)
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

func (s *Server) recordLocked(e Event) {
	s.events = append(s.events, e)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
