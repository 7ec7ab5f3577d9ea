package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/sessioncert/sessioncert/pkg/auth"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// AdminPasswordEnv names the variable that sets the first admin's password.
const AdminPasswordEnv = "SESSIONCERT_ADMIN_PASSWORD" //nolint:gosec // the name of a variable, not a credential

// AdminPasswordFile is the file in the data directory that receives a
// generated admin password.
const AdminPasswordFile = "admin-password"

// ensureAdmin creates the "admin" identity with a password authenticator
// when the store has no identity at all, so that a fresh installation can be
// administered. Both are stored in one transaction: a first start that is
// interrupted leaves an empty store, and the next start does it again,
// never an admin without a password that no later start would repair.
func (s *Server) ensureAdmin(ctx context.Context) error {
	n, err := s.store.CountIdentities(ctx)
	if err != nil {
		return fmt.Errorf("server: count identities: %w", err)
	}
	if n > 0 {
		return nil
	}

	password := s.deps.AdminPassword
	if password == "" {
		password = os.Getenv(AdminPasswordEnv)
	}
	generated := password == ""
	if generated {
		if password, err = newPassword(s.deps.Rand); err != nil {
			return err
		}
	}

	now := s.deps.Now().UTC()
	idID, err := store.NewID(s.deps.Rand)
	if err != nil {
		return err
	}
	authID, err := store.NewID(s.deps.Rand)
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(password, s.deps.HashParams, s.deps.Rand)
	if err != nil {
		return err
	}

	// Write the password before the identity exists: if this fails, the
	// next start tries again instead of leaving an admin nobody can use.
	path := filepath.Join(s.cfg.DataDir, AdminPasswordFile)
	if generated {
		// The data directory is the operator's choice, not request input.
		if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil { //nolint:gosec // see above
			return fmt.Errorf("server: write admin password: %w", err)
		}
	}
	err = s.store.CreateIdentity(ctx,
		&store.Identity{
			ID: idID, Name: "admin", Type: store.IdentityTypeUser, IsAdmin: true,
			CreatedAt: now, UpdatedAt: now,
		},
		&store.Authenticator{
			ID: authID, IdentityID: idID, Method: store.AuthMethodPassword,
			Username: "admin", PasswordHash: hash, CreatedAt: now, UpdatedAt: now,
		})
	if errors.Is(err, store.ErrConflict) {
		// Another replica on the same etcd created it first.
		if generated {
			_ = os.Remove(path)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("server: create admin: %w", err)
	}

	if generated {
		s.log.Info("created admin identity; its password is in the file", slog.String("file", path),
			slog.String("username", "admin"))
	} else {
		s.log.Info("created admin identity with the password from "+AdminPasswordEnv,
			slog.String("username", "admin"))
	}
	return nil
}

func newPassword(r io.Reader) (string, error) {
	var b [18]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("server: generate password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
