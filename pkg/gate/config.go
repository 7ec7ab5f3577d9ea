package gate

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sessioncert/sessioncert/client"
)

// Defaults and bounds of Config.
const (
	DefaultEventWait         = 30 * time.Second
	MaxEventWait             = 60 * time.Second
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultMinBackoff        = 250 * time.Millisecond
	DefaultMaxBackoff        = 15 * time.Second
	DefaultCacheSize         = 100_000
	DefaultCallTimeout       = 10 * time.Second
	DefaultTombstoneTTL      = 2 * time.Minute
)

// Config is everything a Gate depends on. Client, Username and Password are
// required; every other zero value selects the default named on the field.
type Config struct {
	// Client is the generated client pointed at the controller. Its HTTP
	// client must not time out before EventWait plus a few seconds, or every
	// long poll fails; the gate sets its own deadlines per call.
	Client *client.Sessioncert

	// Username and Password are the credentials of an identity of type
	// Router. The gate logs in when it first needs a session and again
	// whenever the controller answers 401.
	Username string
	Password string

	// Logger receives lifecycle lines (Info), reconnects (Warn) and one line
	// per event (Debug). Default: a logger that discards everything.
	Logger *slog.Logger

	// Now is the clock for cache expiry, stream freshness and tombstone age.
	// Default time.Now.
	Now func() time.Time

	// EventWait is how long one long poll waits for an event, rounded down
	// to whole seconds; default DefaultEventWait, at most MaxEventWait,
	// at least one second.
	EventWait time.Duration

	// MaxStale bounds how long after the last answer of the event stream
	// cached grants are still used, for a long poll that stays open but
	// silent; past it every Admit asks the controller. A poll that fails
	// stops the use of the cache at once, until a poll succeeds again.
	// Default EventWait + 30s; it must exceed EventWait.
	MaxStale time.Duration

	// HeartbeatInterval is the period of heartbeats; default
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration

	// MinBackoff and MaxBackoff bound the delay before the event stream is
	// reconnected after an error; the delay doubles from MinBackoff up to
	// MaxBackoff, with jitter. Defaults DefaultMinBackoff and
	// DefaultMaxBackoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration

	// CacheSize bounds the number of cached grants; default
	// DefaultCacheSize. Beyond it the least recently used are dropped.
	CacheSize int

	// CallTimeout bounds one createAdmission or heartbeat call, login
	// included; default DefaultCallTimeout.
	CallTimeout time.Duration

	// TombstoneTTL is how long a removed session or certificate is
	// remembered, to refuse grants and Track calls that started before the
	// removal; default DefaultTombstoneTTL. It must exceed CallTimeout.
	TombstoneTTL time.Duration

	// OnRemoved, when set, is called after each removal the gate applies,
	// once its cached grants are dropped and its connections closed. It is
	// called from the goroutine that applies the removal and must not
	// block.
	OnRemoved func(Removal)
}

// withDefaults returns c with defaults applied, or an error naming the
// first setting that is out of range.
func (c Config) withDefaults() (Config, error) {
	if c.Client == nil {
		return c, errors.New("gate: config: Client is required")
	}
	if c.Username == "" || c.Password == "" {
		return c, errors.New("gate: config: Username and Password are required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.EventWait == 0 {
		c.EventWait = DefaultEventWait
	}
	if c.EventWait < time.Second || c.EventWait > MaxEventWait {
		return c, fmt.Errorf("gate: config: EventWait %s is outside [1s, %s]",
			c.EventWait, MaxEventWait)
	}
	c.EventWait = c.EventWait.Truncate(time.Second)
	if c.MaxStale == 0 {
		c.MaxStale = c.EventWait + 30*time.Second
	}
	if c.MaxStale <= c.EventWait {
		return c, fmt.Errorf("gate: config: MaxStale %s must exceed EventWait %s",
			c.MaxStale, c.EventWait)
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = max(DefaultTombstoneTTL, 2*c.CallTimeout)
	}
	switch {
	case c.HeartbeatInterval < 0, c.MinBackoff < 0, c.CacheSize < 0, c.CallTimeout < 0:
		return c, errors.New("gate: config: durations and sizes must not be negative")
	case c.MaxBackoff < c.MinBackoff:
		return c, fmt.Errorf("gate: config: MaxBackoff %s is below MinBackoff %s",
			c.MaxBackoff, c.MinBackoff)
	case c.TombstoneTTL <= c.CallTimeout:
		return c, fmt.Errorf("gate: config: TombstoneTTL %s must exceed CallTimeout %s",
			c.TombstoneTTL, c.CallTimeout)
	}
	return c, nil
}
