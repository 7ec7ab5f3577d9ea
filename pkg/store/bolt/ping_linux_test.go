package bolt_test

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/sessioncert/sessioncert/pkg/store/bolt"
)

// makeReadOnly turns this process's descriptor of the file at path into a
// read-only one, as if its file system had been remounted read-only under
// the open store: the memory map still serves reads, and writes fail.
func makeReadOnly(t *testing.T, path string) {
	t.Helper()
	want, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ro.Close() }()
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		n, nerr := strconv.Atoi(fd.Name())
		if err != nil || nerr != nil || target != want || n == int(ro.Fd()) {
			continue
		}
		if err := syscall.Dup3(int(ro.Fd()), n, 0); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no descriptor of %s", want)
}

// TestPingFailsWhenTheFileCannotBeWritten pings a store whose file can no
// longer be written: reads still answer, as the old read-only ping did,
// but Ping fails.
func TestPingFailsWhenTheFileCannotBeWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessioncert.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, s)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping of a writable file: %v", err)
	}

	makeReadOnly(t, path)
	if _, err := s.CountCertificates(t.Context()); err != nil {
		t.Fatalf("a read of the read-only file failed too: %v", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping of a file that cannot be written succeeded")
	}
}
