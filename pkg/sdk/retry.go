package sdk

import (
	"context"
	"net/http"
	"time"
)

// Retries of requests the controller answered 503: its store was briefly
// unreachable (an etcd member down, a leader election) and the request
// changed nothing, so it is safe to send again.
const (
	unavailableAttempts = 6
	unavailableFirst    = 100 * time.Millisecond
	unavailableMax      = 2 * time.Second
)

// retryUnavailable runs op until it succeeds, fails with anything but a 503,
// the attempts run out or ctx ends. The waits double from 100 ms to 2 s.
func retryUnavailable(ctx context.Context, op func() error) error {
	wait := unavailableFirst
	for attempt := 1; ; attempt++ {
		err := op()
		ae, ok := AsAPIError(err)
		retry := ok && ae.Status == http.StatusServiceUnavailable
		if err == nil || !retry || attempt == unavailableAttempts {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, unavailableMax)
	}
}
