// Package audit writes the audit trail: one JSON line per security event
// (logins, sessions ending, certificates issued and deleted, administrative
// changes, refused admissions). It never records a token, a password, a
// private key or a raw CSR; certificates appear by id, serial and
// fingerprint.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Event types.
const (
	TypeLoginSucceeded     = "login.succeeded"
	TypeLoginFailed        = "login.failed"
	TypeSessionEnded       = "session.ended"
	TypeCertificateIssued  = "certificate.issued"
	TypeCertificateDeleted = "certificate.deleted"
	TypeManagementChange   = "management.change"
	TypeAdmissionRefused   = "admission.refused"
)

// MaxUsernameBytes bounds the username written in a line. The attempted
// username of a failed login comes from anyone, logged in or not; kept
// whole, it would let a stranger fill the audit disk.
const MaxUsernameBytes = 256

// Event is one line of the audit trail. Empty fields are left out. Write
// cuts a Username longer than MaxUsernameBytes and then sets
// UsernameTruncated.
type Event struct {
	Time              time.Time    `json:"time"`
	Type              string       `json:"type"`
	RequestID         string       `json:"requestId,omitempty"`
	Source            string       `json:"source,omitempty"`
	Method            string       `json:"method,omitempty"`
	IdentityID        string       `json:"identityId,omitempty"`
	Username          string       `json:"username,omitempty"`
	UsernameTruncated bool         `json:"usernameTruncated,omitempty"` // set by Write
	APISessionID      string       `json:"apiSessionId,omitempty"`
	Reason            string       `json:"reason,omitempty"`
	Cause             string       `json:"cause,omitempty"`
	Fingerprints      []string     `json:"fingerprints,omitempty"`
	Certificate       *Certificate `json:"certificate,omitempty"`
	Change            *Change      `json:"change,omitempty"`
}

// Certificate describes an issued or deleted certificate.
type Certificate struct {
	ID          string    `json:"id"`
	Serial      string    `json:"serial,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	KeyType     string    `json:"keyType,omitempty"`
	ValidFrom   time.Time `json:"validFrom,omitzero"`
	ValidTo     time.Time `json:"validTo,omitzero"`
}

// Change describes an administrative change; Before and After hold the
// entity without its secrets.
type Change struct {
	Actor  string `json:"actor"`
	Action string `json:"action"`
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Before any    `json:"before,omitempty"`
	After  any    `json:"after,omitempty"`
}

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("audit: closed")

// Log is an audit trail. A nil *Log records nothing, so that auditing can
// be switched off without checks at every call. Safe for concurrent use.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	file   *os.File // nil when writing to stdout or a caller's writer
	now    func() time.Time
	closed bool
}

// Open returns a Log writing to path: a file opened for appending (created
// with mode 0600), or standard output for "-". An empty path returns nil, a
// Log that records nothing.
func Open(path string, now func() time.Time) (*Log, error) {
	if now == nil {
		now = time.Now
	}
	switch path {
	case "":
		return nil, nil
	case "-":
		return &Log{w: os.Stdout, now: now}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600) //nolint:gosec // operator's path
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	return &Log{w: f, file: f, now: now}, nil
}

// New returns a Log writing to w, for tests and embedding.
func New(w io.Writer, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{w: w, now: now}
}

// Write appends e as one JSON line, stamping its time when it has none and
// cutting a username longer than MaxUsernameBytes. The
// line is handed to the operating system before Write returns; a file is
// synced to disk by Sync. It returns the write error, so that callers that
// must not lose an event (issuance, administrative changes) can fail the
// request instead.
func (l *Log) Write(e Event) error {
	if l == nil {
		return nil
	}
	if e.Time.IsZero() {
		e.Time = l.now().UTC()
	}
	if len(e.Username) > MaxUsernameBytes {
		e.Username, e.UsernameTruncated = truncate(e.Username, MaxUsernameBytes), true
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: encode: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if _, err := l.w.Write(line); err != nil {
		return fmt.Errorf("audit: write: %w", err)
	}
	return nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	s = s[:n]
	for range utf8.UTFMax - 1 {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// Sync flushes a file to disk; it does nothing for other writers.
func (l *Log) Sync() error {
	if l == nil || l.file == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	if err := syncFile(l.file); err != nil {
		return fmt.Errorf("audit: sync: %w", err)
	}
	return nil
}

// syncFile syncs f, except where the file cannot be synced at all (a pipe or
// a device such as /dev/stdout given by path).
func syncFile(f *os.File) error {
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// Close syncs and closes a file. Later writes return ErrClosed.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.file == nil {
		return nil
	}
	err := syncFile(l.file)
	return errors.Join(err, l.file.Close())
}
