package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWrite(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	l := New(&buf, func() time.Time { return now })
	if err := l.Write(Event{Type: TypeLoginFailed, Username: "alice", Reason: "wrongPassword"}); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON line: %v: %q", err, buf.String())
	}
	if got["time"] != "2026-12-03T12:00:00Z" || got["type"] != TypeLoginFailed || got["username"] != "alice" {
		t.Errorf("line = %v", got)
	}
	if _, ok := got["certificate"]; ok {
		t.Error("empty fields are written")
	}

	if err := New(failingWriter{}, nil).Write(Event{Type: TypeLoginSucceeded}); err == nil {
		t.Error("a failed write was not reported")
	}
	var off *Log
	if err := off.Write(Event{Type: TypeLoginSucceeded}); err != nil || off.Close() != nil {
		t.Error("a nil Log must record nothing and never fail")
	}
}

func TestOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write(Event{Type: TypeSessionEnded, Cause: "logout"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(Event{Type: TypeSessionEnded}); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v, want ErrClosed", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if l, err := Open("", nil); l != nil || err != nil {
		t.Error("an empty path must give a nil Log")
	}
}

// lines returns how many lines l has written.
func (l *Log) lines() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.written
}

// TestWriteDurableSharesSyncs starts writers at once, holding the first
// sync until every line is written: all of them return with their line in
// the file, after two syncs at most, one for the first line and one for
// all the lines written while it ran.
func TestWriteDurableSharesSyncs(t *testing.T) {
	const writers = 8
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var syncs atomic.Int64
	l.sync = func(f *os.File) error {
		if syncs.Add(1) == 1 {
			for l.lines() < writers {
				runtime.Gosched()
			}
		}
		return syncFile(f)
	}

	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			errs[i] = l.WriteDurable(Event{Type: TypeCertificateIssued, APISessionID: fmt.Sprint("s", i)})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if n := syncs.Load(); n < 1 || n > 2 {
		t.Errorf("%d syncs for %d concurrent writers, want 1 or 2", n, writers)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var e Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a JSON line: %v: %q", err, line)
		}
		seen[e.APISessionID] = true
	}
	for i := range writers {
		if !seen[fmt.Sprint("s", i)] {
			t.Errorf("the line of writer %d is not in the file", i)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWriteDurableSyncError: a failed sync is the caller's error, a plain
// write does not sync, and the next durable write syncs again.
func TestWriteDurableSyncError(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "audit.log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	injected := errors.New("injected: device gone")
	var syncs atomic.Int64
	failing := true
	l.sync = func(f *os.File) error {
		syncs.Add(1)
		if failing {
			return injected
		}
		return syncFile(f)
	}

	if err := l.WriteDurable(Event{Type: TypeManagementChange}); !errors.Is(err, injected) {
		t.Errorf("durable write with a failing sync: %v, want the sync error", err)
	}
	if err := l.Write(Event{Type: TypeLoginSucceeded}); err != nil || syncs.Load() != 1 {
		t.Errorf("plain write: %v after %d syncs, want no error and no sync", err, syncs.Load())
	}
	failing = false
	if err := l.WriteDurable(Event{Type: TypeManagementChange}); err != nil || syncs.Load() != 2 {
		t.Errorf("durable write after the device came back: %v after %d syncs, want nil after 2",
			err, syncs.Load())
	}
}

// TestWriteDurableOtherWriters: a writer that is not a file is written
// and never synced.
func TestWriteDurableOtherWriters(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, nil)
	l.sync = func(*os.File) error { return errors.New("synced a writer that is not a file") }
	if err := l.WriteDurable(Event{Type: TypeCertificateIssued}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), TypeCertificateIssued) {
		t.Errorf("the line was not written: %q", buf.String())
	}
	if err := New(failingWriter{}, nil).WriteDurable(Event{Type: TypeCertificateIssued}); err == nil {
		t.Error("a failed durable write was not reported")
	}
	var off *Log
	if err := off.WriteDurable(Event{Type: TypeCertificateIssued}); err != nil {
		t.Error("a nil Log must record nothing and never fail")
	}
}

// TestUsernameCapped: a username longer than MaxUsernameBytes is cut, on a
// character boundary, and the line says so; a short one is kept whole.
func TestUsernameCapped(t *testing.T) {
	long := strings.Repeat("a", 900<<10)
	// 255 ASCII bytes then a 3-byte character straddling the cap.
	straddle := strings.Repeat("b", MaxUsernameBytes-1) + "€" + "tail"
	for _, tc := range []struct {
		name, username, want string
		truncated            bool
	}{
		{"short", "alice", "alice", false},
		{"exactly the cap", long[:MaxUsernameBytes], long[:MaxUsernameBytes], false},
		{"900 KiB", long, long[:MaxUsernameBytes], true},
		{"cut inside a character", straddle, straddle[:MaxUsernameBytes-1], true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := New(&buf, nil).Write(Event{Type: TypeLoginFailed, Username: tc.username}); err != nil {
				t.Fatal(err)
			}
			var got Event
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Username != tc.want || got.UsernameTruncated != tc.truncated {
				t.Errorf("username of %d bytes, truncated %v; want %d bytes, truncated %v",
					len(got.Username), got.UsernameTruncated, len(tc.want), tc.truncated)
			}
			if !utf8.ValidString(got.Username) {
				t.Error("the cut username is not valid UTF-8")
			}
		})
	}
}

// TestFields gives the keys of a change's before and after in the trail's
// lower camel case, and leaves secrets out.
func TestFields(t *testing.T) {
	type record struct {
		ID, IdentityID, CertPEM, JWKSEndpoint, APISessionID string
		IsAdmin, UseExternalID                              bool
		PasswordHash, TokenHash                             string
		CreatedAt                                           time.Time
		hidden                                              string
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	got := Fields(&record{ID: "i1", IdentityID: "u1", CertPEM: "pem", JWKSEndpoint: "https://idp/jwks",
		APISessionID: "s1", IsAdmin: true, PasswordHash: "argon2id$...", TokenHash: "th", CreatedAt: at,
		hidden: "x"})
	want := map[string]any{
		"id": "i1", "identityId": "u1", "certPem": "pem", "jwksEndpoint": "https://idp/jwks",
		"apiSessionId": "s1", "isAdmin": true, "useExternalId": false, "createdAt": at,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Fields = %v\nwant     %v", got, want)
	}
	for _, v := range []any{nil, "text", (*record)(nil)} {
		if got := Fields(v); got != v {
			t.Errorf("Fields(%#v) = %#v, want it unchanged", v, got)
		}
	}
}
