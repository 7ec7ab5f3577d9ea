package server

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jessevdk/go-flags"
)

// Config is every setting of sessioncert-server. The struct tags make it a
// go-flags command line: each field is a flag, and may also come from the
// environment variable named in its env tag. The help text of each flag is
// in flagHelp, to keep the tags short.
type Config struct {
	DataDir        string        `long:"data-dir" env:"DATA_DIR" default:"./data"`
	TrustDomain    string        `long:"trust-domain" env:"TRUST_DOMAIN" default:"sessioncert.local"`
	SessionTimeout time.Duration `long:"session-timeout" env:"SESSION_TIMEOUT" default:"30m"`

	Log    LogConfig    `group:"Logging" namespace:"log" env-namespace:"LOG"`
	Listen ListenConfig `group:"Listener"`
	Certs  CertConfig   `group:"Certificates"`
	Store  StoreConfig  `group:"Store"`
	Logins LoginConfig  `group:"Logins"`
	Ops    OpsConfig    `group:"Operations"`
}

// OpsConfig is what operators watch: metrics and the audit trail.
type OpsConfig struct {
	MetricsAddr string `long:"metrics-addr" env:"METRICS_ADDR"`
	AuditLog    string `long:"audit-log" env:"AUDIT_LOG" default:"audit.log"`
	PprofAddr   string `long:"pprof-addr" env:"PPROF_ADDR"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `long:"level" env:"LEVEL" default:"info" choice:"debug" choice:"info" choice:"warn" choice:"error"`
	Format string `long:"format" env:"FORMAT" default:"text" choice:"text" choice:"json"`
}

// ListenConfig is the HTTPS listener. Without TLS files the server uses the
// development PKI's certificate for localhost.
type ListenConfig struct {
	Host            string        `long:"host" env:"HOST" default:"127.0.0.1"`
	Port            int           `long:"port" env:"PORT" default:"1280"`
	TLSCertificate  string        `long:"tls-certificate" env:"TLS_CERTIFICATE"`
	TLSKey          string        `long:"tls-key" env:"TLS_KEY"`
	ReadTimeout     time.Duration `long:"read-timeout" env:"READ_TIMEOUT" default:"30s"`
	WriteTimeout    time.Duration `long:"write-timeout" env:"WRITE_TIMEOUT" default:"90s"`
	IdleTimeout     time.Duration `long:"keep-alive" env:"KEEP_ALIVE" default:"3m"`
	MaxHeaderSize   int           `long:"max-header-size" env:"MAX_HEADER_SIZE" default:"65536"`
	ShutdownTimeout time.Duration `long:"shutdown-timeout" env:"SHUTDOWN_TIMEOUT" default:"15s"`
}

// CertConfig is the CA and the certificates it issues.
type CertConfig struct {
	CACert             string        `long:"ca-cert" env:"CA_CERT"`
	CAKey              string        `long:"ca-key" env:"CA_KEY"`
	Lifetime           time.Duration `long:"cert-lifetime" env:"CERT_LIFETIME" default:"12h"`
	Backdate           time.Duration `long:"cert-backdate" env:"CERT_BACKDATE" default:"1m"`
	MaxCertsPerSession int           `long:"max-certs-per-session" env:"MAX_CERTS_PER_SESSION" default:"64"`
	RateBurst          int           `long:"cert-rate-burst" env:"CERT_RATE_BURST" default:"20"`
	RateRefill         time.Duration `long:"cert-rate-refill" env:"CERT_RATE_REFILL" default:"1s"`
}

// StoreConfig selects the store.
type StoreConfig struct {
	Kind           string        `long:"store" env:"STORE" default:"bolt" choice:"bolt" choice:"etcd"`
	EtcdEndpoints  []string      `long:"etcd-endpoints" env:"ETCD_ENDPOINTS" env-delim:","`
	EtcdPrefix     string        `long:"etcd-prefix" env:"ETCD_PREFIX" default:"/sessioncert/"`
	EtcdCA         string        `long:"etcd-ca" env:"ETCD_CA"`
	EtcdCert       string        `long:"etcd-cert" env:"ETCD_CERT"`
	EtcdKey        string        `long:"etcd-key" env:"ETCD_KEY"`
	EtcdRevalidate time.Duration `long:"etcd-revalidate" env:"ETCD_REVALIDATE" default:"5s"`
	EventHistory   int           `long:"event-history" env:"EVENT_HISTORY" default:"100000"`
	SweepInterval  time.Duration `long:"sweep-interval" env:"SWEEP_INTERVAL" default:"30s"`
	FlushInterval  time.Duration `long:"activity-flush-interval" env:"ACTIVITY_FLUSH_INTERVAL" default:"5s"`
}

// LoginConfig is the rate limit of failed logins.
type LoginConfig struct {
	FailureBurst int           `long:"login-failure-burst" env:"LOGIN_FAILURE_BURST" default:"10"`
	FailureEvery time.Duration `long:"login-failure-refill" env:"LOGIN_FAILURE_REFILL" default:"6s"`
}

// flagHelp is the --help text of each flag, by its long name.
var flagHelp = map[string]string{
	"data-dir":        "directory of the store, the development PKI and the admin password file",
	"trust-domain":    "SPIFFE trust domain of issued certificates",
	"session-timeout": "idle timeout of API sessions (minimum 1m)",

	"log-level":  "least severe level logged",
	"log-format": "log line format",

	"host": "address to listen on",
	"port": "port to listen on (0 picks a free one)",
	"tls-certificate": "server certificate (PEM, chain allowed); " +
		"default: the development PKI's",
	"tls-key":         "private key of --tls-certificate",
	"read-timeout":    "maximum time to read a request",
	"write-timeout":   "maximum time to write a reply (above the longest long poll)",
	"keep-alive":      "how long an idle keep-alive connection stays open",
	"max-header-size": "largest request header accepted, in bytes",
	"shutdown-timeout": "how long in-flight requests may finish after SIGTERM; " +
		"connections still open then are closed",

	"ca-cert": "signing CA certificate, optionally followed by its chain (PEM); " +
		"default: the development PKI",
	"ca-key":                "private key of --ca-cert (PKCS#8, SEC 1 or PKCS#1 PEM)",
	"cert-lifetime":         "validity of issued certificates",
	"cert-backdate":         "how far NotBefore is set in the past, for clock skew (0: not at all)",
	"max-certs-per-session": "live certificates one session may hold",
	"cert-rate-burst": "certificate requests one session may make at once " +
		"(0 disables the limit)",
	"cert-rate-refill": "one more certificate request is allowed after this long",

	"store": "where state is kept: bolt (one file in --data-dir) or etcd " +
		"(a cluster shared by replicas)",
	"etcd-endpoints": "etcd client URLs, for --store etcd (repeat the flag, " +
		"or comma-separate in the variable)",
	"etcd-prefix": "key prefix of this deployment in etcd",
	"etcd-ca":     "PEM bundle that signs the etcd servers' certificates",
	"etcd-cert":   "client certificate for etcd (PEM)",
	"etcd-key":    "private key of --etcd-cert",
	"etcd-revalidate": "how long a replica trusts its cached copy of a session before " +
		"reading it again from etcd: activity and identity changes made on other " +
		"replicas reach it within this",
	"event-history":  "removal events kept for routers that resume",
	"sweep-interval": "how often expired sessions and certificates are removed",
	"activity-flush-interval": "how often session activity is written to the store (coalesced); " +
		"with etcd a session's lease outlasts its expiry by two of these plus 5s of clock skew, " +
		"and by 1m at least",

	"login-failure-burst": "failed logins allowed at once per source address and " +
		"per username (0 disables the limit)",
	"login-failure-refill": "one more failed login is allowed after this long",

	"metrics-addr": "serve /metrics on this address (plain HTTP) instead of on the " +
		"API listener, e.g. 127.0.0.1:9090",
	"audit-log": "audit trail file (relative to --data-dir), - for standard output, or none",
	"pprof-addr": "serve Go's profiler (net/http/pprof) on this address, for diagnosis " +
		"only; keep it on loopback",
}

// EnvPrefix is the prefix of every environment variable of a setting.
const EnvPrefix = "SESSIONCERT_"

// NewParser returns the command-line parser of sessioncert-server, filling
// c. Every flag may also be set by an environment variable: EnvPrefix
// followed by the name in the flag's env tag, with its group's prefix.
func NewParser(c *Config, options flags.Options) (*flags.Parser, error) {
	return newParser(c, options, strings.TrimSuffix(EnvPrefix, "_"))
}

func newParser(c *Config, options flags.Options, envNamespace string) (*flags.Parser, error) {
	p := flags.NewNamedParser("sessioncert-server", options)
	p.NamespaceDelimiter = "-"
	p.EnvNamespaceDelimiter = "_"
	g, err := p.AddGroup("Server", "", c)
	if err != nil {
		return nil, err
	}
	g.EnvNamespace = envNamespace
	n, err := describe(g)
	if err != nil {
		return nil, err
	}
	if n != len(flagHelp) {
		return nil, fmt.Errorf("server: %d help texts for %d flags", len(flagHelp), n)
	}
	return p, nil
}

// describe gives every option of g and its subgroups its flagHelp text and
// returns how many it described. An option without a text is a mistake in
// this file, reported as an error.
func describe(g *flags.Group) (int, error) {
	n := 0
	for _, o := range g.Options() {
		help, ok := flagHelp[o.LongNameWithNamespace()]
		if !ok {
			return n, fmt.Errorf("server: flag --%s has no help text", o.LongNameWithNamespace())
		}
		o.Description = help
		n++
	}
	for _, sub := range g.Groups() {
		m, err := describe(sub)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// DefaultConfig returns the configuration with every default applied, as the
// command line would give it with no flags and no environment.
func DefaultConfig() (Config, error) {
	var c Config
	// No environment variable name can contain NUL, so none applies.
	p, err := newParser(&c, flags.None, "\x00")
	if err != nil {
		return c, err
	}
	if _, err := p.ParseArgs(nil); err != nil {
		return c, err
	}
	return c, nil
}

// Validate checks what the flags' types cannot.
func (c *Config) Validate() error {
	if c.SessionTimeout < time.Minute {
		return fmt.Errorf("--session-timeout %s is below the minimum of 1m", c.SessionTimeout)
	}
	if (c.Listen.TLSCertificate == "") != (c.Listen.TLSKey == "") {
		return fmt.Errorf("--tls-certificate and --tls-key go together")
	}
	if (c.Certs.CACert == "") != (c.Certs.CAKey == "") {
		return fmt.Errorf("--ca-cert and --ca-key go together")
	}
	if c.Certs.Lifetime < time.Minute {
		return fmt.Errorf("--cert-lifetime %s is below the minimum of 1m", c.Certs.Lifetime)
	}
	if c.Store.Kind == "etcd" && c.Store.EtcdRevalidate <= 0 {
		return fmt.Errorf("--etcd-revalidate must be positive")
	}
	if c.Store.Kind == "etcd" && len(c.Store.EtcdEndpoints) == 0 {
		return fmt.Errorf("--store etcd needs --etcd-endpoints")
	}
	if (c.Store.EtcdCert == "") != (c.Store.EtcdKey == "") {
		return fmt.Errorf("--etcd-cert and --etcd-key go together")
	}
	if c.Store.SweepInterval < time.Second || c.Store.FlushInterval < 100*time.Millisecond {
		return fmt.Errorf("--sweep-interval must be at least 1s " +
			"and --activity-flush-interval at least 100ms")
	}
	if c.Store.FlushInterval >= c.SessionTimeout/2 {
		return fmt.Errorf("--activity-flush-interval must be under half of --session-timeout")
	}
	if c.Certs.Backdate < 0 {
		return fmt.Errorf("--cert-backdate must not be negative")
	}
	return nil
}

// LogLevel returns the slog level named by the configuration.
func LogLevel(c LogConfig) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Level)); err != nil {
		return slog.LevelInfo
	}
	return l
}
