package manage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/bolt"
)

// recorder is an Observer that keeps what it is told.
type recorder struct{ lines []string }

func (r *recorder) Changed(_ context.Context, c Change) error {
	r.lines = append(r.lines, "change "+c.Action+" "+c.Kind)
	return nil
}

func (r *recorder) ChangeFailed(_ context.Context, c Change, reason string) {
	r.lines = append(r.lines, "failed "+c.Action+" "+c.Kind+" "+reason)
}

// newService returns a Service over a real bolt store, and its recorder.
func newService(t *testing.T) (*Service, *recorder) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "test.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	reg, err := session.New(session.Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	return New(Config{Store: st, Registry: reg, Observer: rec,
		HashParams: auth.HashParams{Time: 1, Memory: 64, Threads: 1}}), rec
}

// TestRefusedBeforeRecording: requests refused before the change is known
// (invalid fields, unknown ids) record nothing, as they change nothing.
func TestRefusedBeforeRecording(t *testing.T) {
	ctx := context.Background()
	empty, password := "", "long enough"
	tests := []struct {
		name string
		call func(s *Service) error
		want error // nil: a *FieldError
	}{
		{"identity without a name", func(s *Service) error {
			_, err := s.CreateIdentity(ctx, "admin", IdentityInput{Name: &empty})
			return err
		}, nil},
		{"authenticator of an unknown identity", func(s *Service) error {
			name := "bob"
			_, err := s.CreateAuthenticator(ctx, "admin", AuthenticatorInput{Method: "updb",
				IdentityID: "nope", Username: &name, Password: &password})
			return err
		}, nil},
		{"update of an unknown identity", func(s *Service) error {
			return s.UpdateIdentity(ctx, "admin", "nope", IdentityInput{})
		}, store.ErrNotFound},
		{"delete of an unknown identity", func(s *Service) error {
			return s.DeleteIdentity(ctx, "admin", "nope")
		}, store.ErrNotFound},
		{"delete of an unknown authenticator", func(s *Service) error {
			return s.DeleteAuthenticator(ctx, "admin", "nope")
		}, store.ErrNotFound},
		{"delete of an unknown signer", func(s *Service) error {
			return s.DeleteSigner(ctx, "admin", "nope")
		}, store.ErrNotFound},
		{"delete of an unknown session", func(s *Service) error {
			return s.DeleteSession(ctx, "admin", "nope")
		}, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rec := newService(t)
			err := tt.call(s)
			var fe *FieldError
			if tt.want == nil && !errors.As(err, &fe) || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v (nil: a field error)", err, tt.want)
			}
			if len(rec.lines) != 0 {
				t.Errorf("recorded %q, want nothing", rec.lines)
			}
		})
	}
}

// TestFailureReason names the store's refusals as the audit trail does.
func TestFailureReason(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&store.ConflictError{Field: "name", Value: "alice"}, FailedConflict},
		{fmt.Errorf("bolt: identity %q: %w", "x", store.ErrNotFound), FailedNotFound},
		{fmt.Errorf("session: delete: %w", session.ErrNotFound), FailedNotFound},
		{fmt.Errorf("etcd: put: %w", store.ErrUnavailable), FailedUnavailable},
		{store.ErrClosed, FailedUnavailable},
		{errors.New("bolt: commit: disk full"), FailedError},
	} {
		t.Run(tt.err.Error(), func(t *testing.T) {
			if got := failureReason(tt.err); got != tt.want {
				t.Errorf("failureReason = %q, want %q", got, tt.want)
			}
		})
	}
}
