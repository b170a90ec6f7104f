package metrics

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// promtool returns promtool's path, skipping the test when it is not
// installed (CI installs Debian's prometheus package, which brings it).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SAE_TEST_TOOLS_REQUIRED") == "1" {
			t.Fatalf("promtool not on PATH (scripts/install-test-deps installs it): %v", err)
		}
		t.Skip("promtool not on PATH (apt-get install prometheus)")
	}
	return p
}

func scrape(t testing.TB, h http.Handler) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d, want 200: %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

func TestExpositionPassesPromtoolCheckMetrics(t *testing.T) {
	bin := promtool(t)
	_, reg := loadSchedules(t, 3, 2)
	body := scrape(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))

	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics = %v, output:\n%s\nwant no finding", err, out)
	}
}

func TestExpositionHasHelpForEveryMetric(t *testing.T) {
	_, reg := loadSchedules(t, 2, 1)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() error = %v", err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), Namespace+"_") && mf.GetHelp() == "" {
			t.Errorf("%s has no help text", mf.GetName())
		}
	}
}

// BenchmarkScrape1000Schedules measures one scrape of the /metrics handler
// with 1,000 schedules, each with labels, 3 apps and every series populated.
// Target: < 100 ms per scrape (reported as ms/scrape).
func BenchmarkScrape1000Schedules(b *testing.B) {
	_, reg := loadSchedules(b, 1000, 3)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	size := len(scrape(b, h))
	series := len(gather(b, reg))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpuStart := time.Now(), cpuTime(b)
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(discardWriter{httptest.NewRecorder()}, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	}
	elapsed, cpu := time.Since(start), cpuTime(b)-cpuStart
	b.ReportMetric(float64(elapsed.Microseconds())/1000/float64(b.N), "ms/scrape")
	// CPU time (user+system, GC included) is what a busy host cannot steal:
	// on a loaded CI box the wall-clock figure varies, this one much less.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/scrape")
	b.ReportMetric(float64(size)/1e6, "MB/scrape")
	b.ReportMetric(float64(series), "series")
}

// cpuTime returns the process' user+system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// discardWriter is a ResponseWriter that throws the body away.
type discardWriter struct{ *httptest.ResponseRecorder }

func (d discardWriter) Write(p []byte) (int, error) { return io.Discard.Write(p) }
