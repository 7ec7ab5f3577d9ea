package sdk

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

func TestRetryUnavailable(t *testing.T) {
	unavailable := &APIError{Status: http.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE"}
	refused := &APIError{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED"}
	tests := []struct {
		name      string
		failures  []error // returned by successive calls, then nil
		wantCalls int
		wantErr   error
	}{
		{"success at once", nil, 1, nil},
		{"two 503s then success", []error{unavailable, unavailable}, 3, nil},
		{"a 401 is not retried", []error{refused}, 1, refused},
		{"503s until the attempts run out", []error{unavailable, unavailable, unavailable,
			unavailable, unavailable, unavailable, unavailable}, unavailableAttempts, unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := retryUnavailable(context.Background(), func() error {
				calls++
				if calls <= len(tt.failures) {
					return tt.failures[calls-1]
				}
				return nil
			})
			if calls != tt.wantCalls || !errors.Is(err, tt.wantErr) {
				t.Errorf("calls = %d, err = %v; want %d, %v", calls, err, tt.wantCalls, tt.wantErr)
			}
		})
	}
}
