// Package metrics holds sessioncert's Prometheus metrics on a registry of
// its own (never the global one), and the hooks that move them: HTTP
// requests per operation, issuance, refusals, logins, sessions and
// certificates, the sweeper, removal events, long-poll waiters and store
// operations.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessioncert/sessioncert/pkg/store"
)

const namespace = "sessioncert"

// LiveRefreshInterval is how often a replica in cluster mode sets the live
// gauges again from the store's counts; its own changes move them in
// between. A count is one count-only read per gauge, but etcd walks its
// index to make it, so it is not done per scrape.
const LiveRefreshInterval = 30 * time.Second

// Refusal reasons counted by Refused.
const (
	RefusalBadCSR      = "bad_csr"
	RefusalCertCap     = "certificate_cap"
	RefusalRateLimited = "rate_limited"

	// RefusalCAUnavailable is an issuance the CA could not sign: its
	// certificate is out of its validity, or its signer failed.
	RefusalCAUnavailable = "ca_unavailable"
)

// Login outcomes counted by Login.
const (
	LoginSucceeded   = "succeeded"
	LoginInvalid     = "invalid"
	LoginRateLimited = "rate_limited"
	LoginError       = "error"
)

// Metrics is the set of sessioncert's metrics. Its methods are safe for
// concurrent use; a nil *Metrics records nothing.
type Metrics struct {
	registry *prometheus.Registry

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	issued          *prometheus.CounterVec
	issueDuration   prometheus.Histogram
	refusals        *prometheus.CounterVec
	logins          *prometheus.CounterVec
	sessionsLive    prometheus.Gauge
	certsLive       prometheus.Gauge
	live            liveCounts
	sessionsEnded   *prometheus.CounterVec
	sweeps          *prometheus.CounterVec
	sweepRemoved    prometheus.Counter
	events          *prometheus.CounterVec
	waiters         prometheus.Gauge
	storeOps        *prometheus.HistogramVec
}

// New returns the metrics registered on a new registry, together with the
// Go runtime and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{registry: r}

	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "http_requests_total",
		Help: "API requests by operation id (unmatched when none) and status code.",
	}, []string{"operation", "code"})
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "http_request_duration_seconds",
		Help:    "Latency of API requests by operation id, from arrival to the reply.",
		Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
	}, []string{"operation"})
	m.issued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "certificates_issued_total",
		Help: "API Session Certificates issued, by the key type of the CSR.",
	}, []string{"key_type"})
	m.issueDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "certificate_issue_duration_seconds",
		Help:    "Time to check a CSR, sign, self-check and store the certificate.",
		Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
	})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "certificate_refusals_total",
		Help: "Certificate requests refused, by reason (bad_csr, certificate_cap, rate_limited).",
	}, []string{"reason"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "logins_total",
		Help: "Login attempts by method and outcome.",
	}, []string{"method", "outcome"})
	m.sessionsLive = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "sessions_live",
		Help: "API sessions stored. With etcd, across the cluster: counted in etcd at start " +
			"and every " + LiveRefreshInterval.String() + ", with this replica's own changes " +
			"applied in between.",
	})
	m.certsLive = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "certificates_live",
		Help: "Session certificates stored. With etcd, across the cluster: counted in etcd at " +
			"start and every " + LiveRefreshInterval.String() + ", with this replica's own " +
			"changes applied in between.",
	})
	m.sessionsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "sessions_ended_total",
		Help: "API sessions ended, by cause (logout, expiry, admin).",
	}, []string{"cause"})
	m.sweeps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "sweeps_total",
		Help: "Runs of the expiry sweeper, by outcome.",
	}, []string{"outcome"})
	m.sweepRemoved = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "sweep_removed_sessions_total",
		Help: "Expired sessions removed by the sweeper.",
	})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "removal_events_total",
		Help: "Removal events emitted, by type.",
	}, []string{"type"})
	m.waiters = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "event_waiters",
		Help: "Routers waiting in a long poll for removal events.",
	})
	m.storeOps = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "store_operation_duration_seconds",
		Help:    "Latency of store operations on the request path, by operation.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
	}, []string{"operation"})

	for _, c := range []prometheus.Collector{
		m.requests, m.requestDuration, m.issued, m.issueDuration, m.refusals, m.logins,
		m.sessionsLive, m.certsLive, m.sessionsEnded, m.sweeps, m.sweepRemoved, m.events,
		m.waiters, m.storeOps,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		f(c)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Registry returns the registry, for tests and embedding.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Request counts one API request of an operation.
func (m *Metrics) Request(operation string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(operation, strconv.Itoa(code)).Inc()
	m.requestDuration.WithLabelValues(operation).Observe(d.Seconds())
}

// Issued counts one issued certificate, once the audit trail has it.
func (m *Metrics) Issued(keyType string, d time.Duration) {
	if m == nil {
		return
	}
	m.issued.WithLabelValues(keyType).Inc()
	m.issueDuration.Observe(d.Seconds())
	m.addLive(0, 1)
}

// IssuanceUndone accounts for a certificate that was stored but never
// counted by Issued, because its issuance failed afterwards. ev is the
// event of its removal, counted like any other; nil means the removal
// failed, and the certificate counts as live until the sweeper removes it.
func (m *Metrics) IssuanceUndone(ev *store.Event) {
	switch {
	case m == nil:
	case ev == nil:
		m.addLive(0, 1)
	default:
		m.events.WithLabelValues(string(ev.Type)).Inc()
	}
}

// Refused counts a refused certificate request.
func (m *Metrics) Refused(reason string) {
	if m != nil {
		m.refusals.WithLabelValues(reason).Inc()
	}
}

// Login counts a login attempt.
func (m *Metrics) Login(method, outcome string) {
	if m != nil {
		m.logins.WithLabelValues(method, outcome).Inc()
	}
}

// liveCounts are the values of the live gauges, kept here so that a change
// can be clamped at zero: a removal counted before a count of the store
// that already left it out would otherwise take a gauge below zero.
type liveCounts struct {
	mu              sync.Mutex
	sessions, certs float64
}

// SetLive sets the live gauges from the store's counts: at start, and in
// cluster mode again and again, since removals made by other replicas
// reach no process's gauges otherwise.
func (m *Metrics) SetLive(sessions, certificates int) {
	if m == nil {
		return
	}
	m.live.mu.Lock()
	defer m.live.mu.Unlock()
	m.live.sessions, m.live.certs = float64(max(sessions, 0)), float64(max(certificates, 0))
	m.sessionsLive.Set(m.live.sessions)
	m.certsLive.Set(m.live.certs)
}

// addLive moves the live gauges by the deltas, never below zero.
func (m *Metrics) addLive(sessions, certificates int) {
	m.live.mu.Lock()
	defer m.live.mu.Unlock()
	m.live.sessions = max(m.live.sessions+float64(sessions), 0)
	m.live.certs = max(m.live.certs+float64(certificates), 0)
	m.sessionsLive.Set(m.live.sessions)
	m.certsLive.Set(m.live.certs)
}

// SessionCreated counts a new session and the certificates it starts with.
func (m *Metrics) SessionCreated(initialCerts int) {
	if m == nil {
		return
	}
	m.addLive(1, initialCerts)
}

// Removed counts a removal event: a session ended with its certificates,
// or one certificate deleted.
func (m *Metrics) Removed(ev store.Event) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(string(ev.Type)).Inc()
	sessions := 0
	if ev.Type == store.EventAPISessionRemoved {
		sessions = -1
		m.sessionsEnded.WithLabelValues(string(ev.Cause)).Inc()
	}
	m.addLive(sessions, -len(ev.Fingerprints))
}

// Swept counts a sweeper run.
func (m *Metrics) Swept(removedSessions, expiredCerts int, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.sweeps.WithLabelValues(outcome).Inc()
	m.sweepRemoved.Add(float64(removedSessions))
	m.addLive(0, -expiredCerts)
}

// Waiting moves the long-poll waiter gauge by delta.
func (m *Metrics) Waiting(delta int) {
	if m != nil {
		m.waiters.Add(float64(delta))
	}
}

// StoreOp records the latency of one store operation.
func (m *Metrics) StoreOp(operation string, d time.Duration) {
	if m != nil {
		m.storeOps.WithLabelValues(operation).Observe(d.Seconds())
	}
}
