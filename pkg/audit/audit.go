// Package audit writes the audit trail: one JSON line per security event
// (logins, sessions ending, certificates issued and deleted, administrative
// changes, refused admissions). It never records a token, a password, a
// private key or a raw CSR; certificates appear by id, serial and
// fingerprint. Lines that must outlive a crash once their reply has gone out
// are written with WriteDurable, which group-commits their fsyncs.
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
	TypeAdmissionRefused   = "admission.refused"

	// TypeManagementChange is an administrative change, written before the
	// change is applied: it happened unless a TypeManagementChangeFailed
	// line with the same kind, id and action follows.
	TypeManagementChange = "management.change"

	// TypeManagementChangeFailed is a recorded change that the store then
	// refused, with the reason ("conflict", "not_found", "unavailable" or
	// "error"); nothing changed.
	TypeManagementChangeFailed = "management.change.failed"
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
	mu      sync.Mutex // guards w, written and closed
	w       io.Writer
	file    *os.File // nil when writing to stdout or a caller's writer
	now     func() time.Time
	written uint64 // lines handed to w so far
	closed  bool

	// syncMu serialises syncs of file and guards what they achieved. It is
	// never taken while mu is held.
	syncMu   sync.Mutex
	syncedTo uint64 // every line up to this one is on disk
	failedTo uint64 // the last failed sync covered the lines up to this one
	syncErr  error  // the error of that sync
	sync     func(*os.File) error
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
		return &Log{w: os.Stdout, now: now, sync: syncFile}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600) //nolint:gosec // operator's path
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	return &Log{w: f, file: f, now: now, sync: syncFile}, nil
}

// New returns a Log writing to w, for tests and embedding.
func New(w io.Writer, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{w: w, now: now, sync: syncFile}
}

// Write appends e as one JSON line, stamping its time when it has none and
// cutting a username longer than MaxUsernameBytes. The line is handed to the
// operating system before Write returns, but not synced to disk: a crash of
// the machine may lose it. It returns the write error; ErrClosed after
// Close.
func (l *Log) Write(e Event) error {
	if l == nil {
		return nil
	}
	_, err := l.write(e)
	return err
}

// WriteDurable appends e as Write does and returns only once the line is on
// disk, for the lines that must outlive a crash once the reply has gone out
// (issuance, administrative changes). Concurrent callers share syncs: a
// caller whose line a sync that began after its write already covered does
// not sync again. A writer that is not a file (standard output, a caller's
// writer) is only written. It returns the write or the sync error; a sync
// error is returned to every caller whose line that sync covered.
func (l *Log) WriteDurable(e Event) error {
	if l == nil {
		return nil
	}
	n, err := l.write(e)
	if err != nil || l.file == nil {
		return err
	}
	return l.syncTo(n)
}

// write encodes and appends e, and returns the line's number.
func (l *Log) write(e Event) (uint64, error) {
	if e.Time.IsZero() {
		e.Time = l.now().UTC()
	}
	if len(e.Username) > MaxUsernameBytes {
		e.Username, e.UsernameTruncated = truncate(e.Username, MaxUsernameBytes), true
	}
	line, err := json.Marshal(e)
	if err != nil {
		return 0, fmt.Errorf("audit: encode: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if _, err := l.w.Write(line); err != nil {
		return 0, fmt.Errorf("audit: write: %w", err)
	}
	l.written++
	return l.written, nil
}

// syncTo returns once line n is on disk: at once when a sync that covered it
// has already succeeded (or failed, with its error), or after a sync of
// every line written so far.
func (l *Log) syncTo(n uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	switch {
	case n <= l.syncedTo:
		return nil
	case n <= l.failedTo:
		return l.syncErr
	}
	return l.syncAll()
}

// syncAll syncs every line written so far. The caller holds syncMu.
func (l *Log) syncAll() error {
	l.mu.Lock()
	upTo := l.written
	l.mu.Unlock()
	if err := l.sync(l.file); err != nil {
		l.failedTo, l.syncErr = upTo, fmt.Errorf("audit: sync: %w", err)
		return l.syncErr
	}
	l.syncedTo = upTo
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

// Sync flushes a file to disk; it does nothing for other writers, nor after
// Close.
func (l *Log) Sync() error {
	if l == nil || l.file == nil {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return nil
	}
	return l.syncAll()
}

// syncFile syncs f, except where the file cannot be synced at all (a pipe or
// a device such as /dev/stdout given by path).
func syncFile(f *os.File) error {
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// Close syncs and closes a file. Later writes return ErrClosed; a
// WriteDurable whose line was written before Close returns the outcome of
// Close's sync.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	if l.file == nil {
		return nil
	}
	// No line is written from here on, and the file is closed only once
	// the syncs in progress are done.
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	err := l.syncAll()
	return errors.Join(err, l.file.Close())
}
