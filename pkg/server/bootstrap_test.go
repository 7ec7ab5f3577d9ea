package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// TestFirstStart starts on an empty data directory with no admin password
// given: the password is generated into <data-dir>/admin-password (mode
// 0600) and works, and the log names the file but never the password. With
// SESSIONCERT_ADMIN_PASSWORD set, that password works and no file is
// written.
func TestFirstStart(t *testing.T) {
	for _, tt := range []struct {
		name, env string
	}{
		{"generated", ""},
		{"from the variable", "password-from-the-environment"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(server.AdminPasswordEnv, tt.env)
			var logs syncBuffer
			e := servertest.Start(t, servertest.Options{NoAdminPassword: true,
				Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			path := filepath.Join(e.DataDir, server.AdminPasswordFile)

			password := tt.env
			if tt.env == "" {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatalf("no password file: %v", err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("password file mode %v, want 0600", fi.Mode().Perm())
				}
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				password = strings.TrimSpace(string(data))
				if len(password) < 20 {
					t.Fatalf("generated password of %d characters, want at least 20", len(password))
				}
				if !strings.Contains(logs.String(), path) {
					t.Errorf("the start-up log does not name %s:\n%s", path, logs.String())
				}
			} else if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a password file was written although the variable was set (%v)", err)
			}
			e.Login(t, "admin", password)
			if strings.Contains(logs.String(), password) {
				t.Error("the log holds the admin password")
			}
		})
	}
}

// interrupted is a store whose CreateIdentity fails, as when the process
// dies during the first start: before the write, or (committed) right after
// it, before it could be acknowledged.
type interrupted struct {
	store.Store
	committed bool
}

func (s *interrupted) CreateIdentity(ctx context.Context, i *store.Identity, auths ...*store.Authenticator) error {
	if s.committed {
		if err := s.Store.CreateIdentity(ctx, i, auths...); err != nil {
			return err
		}
	}
	return errors.New("injected: the process died here")
}

// TestInterruptedFirstStart: a first start interrupted while it creates the
// admin fails, and the next start on the same data directory leaves an
// admin who logs in with the password in the file: the admin and its
// password are created together or not at all.
func TestInterruptedFirstStart(t *testing.T) {
	for _, tt := range []struct {
		name      string
		committed bool
	}{
		{"before the write", false},
		{"after the commit", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(server.AdminPasswordEnv, "")
			dir := t.TempDir()
			cfg, err := server.DefaultConfig()
			if err != nil {
				t.Fatal(err)
			}
			cfg.DataDir, cfg.Listen.Port = dir, 0
			_, err = server.New(cfg, server.Deps{
				Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
				HashParams: auth.HashParams{Time: 1, Memory: 64, Threads: 1},
				WrapStore: func(s store.Store) store.Store {
					return &interrupted{Store: s, committed: tt.committed}
				},
			})
			if err == nil {
				t.Fatal("the interrupted first start succeeded")
			}

			e := servertest.Start(t, servertest.Options{DataDir: dir, NoAdminPassword: true})
			data, err := os.ReadFile(filepath.Join(dir, server.AdminPasswordFile))
			if err != nil {
				t.Fatal(err)
			}
			e.Login(t, "admin", strings.TrimSpace(string(data)))
			ctx := context.Background()
			identities, err := e.Server.Store().CountIdentities(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, auths, err := e.Server.Store().ListAuthenticators(ctx, store.Page{Limit: 10})
			if err != nil || identities != 1 || auths != 1 {
				t.Errorf("%d identities and %d authenticators (%v), want one admin with its password",
					identities, auths, err)
			}
		})
	}
}
