package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sessioncert/sessioncert/pkg/handlers"
	"github.com/sessioncert/sessioncert/pkg/store/etcd"
)

// caExpiryWarning is how long before the CA certificate expires the health
// check starts to warn.
const caExpiryWarning = 30 * 24 * time.Hour

// healthCacheTTL bounds how often the checks really run: the endpoint needs
// no session, and each run costs a store round trip and a signature.
const healthCacheTTL = time.Second

type healthCache struct {
	mu     sync.Mutex
	at     time.Time
	checks []handlers.HealthCheck
}

// health runs the health checks: a store round trip, a signature with the
// CA key and the CA's remaining validity, and whether the sweeper ran
// recently.
func (s *Server) health(ctx context.Context) []handlers.HealthCheck {
	s.healthCache.mu.Lock()
	defer s.healthCache.mu.Unlock()
	now := s.deps.Now()
	if s.healthCache.checks != nil && now.Sub(s.healthCache.at) < healthCacheTTL {
		return s.healthCache.checks
	}
	// Everyone who asks within the TTL gets this run's answer, so it must
	// not end with the request that happened to start it.
	ctx = context.WithoutCancel(ctx)
	// The endpoint needs no session: causes go to the log, and the reply
	// gets a short generic detail.
	failed := func(id, detail string, err error) (bool, string) {
		s.log.Error("health check failed", slog.String("check", id), slog.Any("error", err))
		return false, detail
	}
	checks := []handlers.HealthCheck{
		timed("store", func() (bool, string) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			err := s.store.Ping(ctx)
			switch {
			case errors.Is(err, etcd.ErrNoSpace):
				// It lasts until an operator acts, and says what to do.
				return failed("store", etcd.ErrNoSpace.Error(), err)
			case err != nil:
				return failed("store", "store round trip failed", err)
			}
			return true, "round trip ok"
		}),
		timed("ca", func() (bool, string) {
			if err := s.ca.CheckKey(); err != nil {
				return failed("ca", "the CA key cannot sign", err)
			}
			left := s.ca.NotAfter().Sub(s.deps.Now())
			if left <= 0 {
				return false, "the CA certificate has expired"
			}
			in := fmt.Sprintf("%d days", int(left.Hours()/24))
			if left < 24*time.Hour {
				// "0 days" would hide how urgent the last day is.
				in = left.Round(time.Minute).String()
			}
			if left < caExpiryWarning {
				return true, "warning: the CA certificate expires in " + in
			}
			return true, "key usable; the CA certificate expires in " + in
		}),
		timed("sweeper", func() (bool, string) {
			last := s.registry.LastSweep()
			if last.IsZero() {
				last = s.started
			}
			ago := s.deps.Now().Sub(last)
			if ago > 3*s.sweepInterval {
				return false, fmt.Sprintf("last sweep %s ago", ago.Round(time.Second))
			}
			return true, fmt.Sprintf("last sweep %s ago", ago.Round(time.Second))
		}),
	}
	s.healthCache.at = now
	s.healthCache.checks = checks
	return checks
}

func timed(id string, check func() (bool, string)) handlers.HealthCheck {
	start := time.Now()
	ok, detail := check()
	return handlers.HealthCheck{ID: id, Healthy: ok, Duration: time.Since(start), Detail: detail}
}
