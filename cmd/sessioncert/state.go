package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// sessionFileName is the file in the configuration directory that holds the
// saved session.
const sessionFileName = "session.json"

// savedSession is what login keeps between commands. The file holds a
// secret, the token, so it is written with mode 0600 in a directory of mode
// 0700.
type savedSession struct {
	Controller   string    `json:"controller"`
	Token        string    `json:"token"`
	SessionID    string    `json:"sessionId"`
	IdentityID   string    `json:"identityId"`
	IdentityName string    `json:"identityName"`
	CA           string    `json:"ca,omitempty"` // absolute path of the --ca bundle used at login
	LoggedInAt   time.Time `json:"loggedInAt"`
}

// errNotLoggedIn is returned when there is no saved session for the
// controller.
var errNotLoggedIn = errors.New("not logged in")

func (a *app) sessionFile() string {
	return filepath.Join(a.opts.ConfigDir, sessionFileName)
}

// loadSession reads the saved session, whatever its controller. A missing
// file is errNotLoggedIn.
func (a *app) loadSession() (*savedSession, error) {
	b, err := os.ReadFile(a.sessionFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotLoggedIn
	}
	if err != nil {
		return nil, fmt.Errorf("read the saved session: %w", err)
	}
	var s savedSession
	if err := json.Unmarshal(b, &s); err != nil || s.Token == "" {
		return nil, fmt.Errorf("the saved session %s is damaged (run sessioncert login)",
			a.sessionFile())
	}
	return &s, nil
}

// currentSession returns the saved session of the controller in use, or an
// error matching errNotLoggedIn that says how to log in.
func (a *app) currentSession() (*savedSession, error) {
	s, err := a.loadSession()
	if errors.Is(err, errNotLoggedIn) {
		return nil, fmt.Errorf("%w to %s (run sessioncert login)",
			errNotLoggedIn, a.controllerURL())
	}
	if err != nil {
		return nil, err
	}
	if s.Controller != a.controllerURL() {
		return nil, fmt.Errorf("%w to %s: the saved session is for %s (run sessioncert login)",
			errNotLoggedIn, a.controllerURL(), s.Controller)
	}
	return s, nil
}

// saveSession writes s atomically: readers see the old file or the new one,
// never a part, and the token is never in a file others may read.
func (a *app) saveSession(s *savedSession) error {
	dir := a.opts.ConfigDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the configuration directory: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(a.sessionFile(), append(b, '\n'), 0o600)
}

// forgetSession removes the saved session; a missing file is no error.
func (a *app) forgetSession() error {
	err := os.Remove(a.sessionFile())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the saved session: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, created with mode perm before any byte is written, and renamed
// over path.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
