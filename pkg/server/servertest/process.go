package servertest

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// Build compiles the command at pkg (e.g. "./cmd/sessioncert-server",
// relative to the module root), with buildArgs added to go build (such as
// "-ldflags", "-X ..."), once per test process for each pkg and buildArgs,
// and returns the path of the binary.
func Build(t testing.TB, pkg string, buildArgs ...string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := strings.Join(append([]string{pkg}, buildArgs...), "\x00")
	if path, ok := built[key]; ok {
		return path
	}
	dir, err := os.MkdirTemp("", "sessioncert-build-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	args := append(append([]string{"build", "-o", out}, buildArgs...), pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = moduleRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	built[key] = out
	return out
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Process is sessioncert-server running as its own process.
type Process struct {
	Cmd     *exec.Cmd
	URL     string
	Host    string
	DataDir string
	RootCAs *x509.CertPool
	done    chan error
	logs    *logTail
}

// StartProcess runs the built server with the given data directory (a new
// temporary one when empty) and extra flags, on a free port of 127.0.0.1,
// and waits until it serves. The admin password is AdminPassword. It stops
// the process when the test ends.
func StartProcess(t testing.TB, dataDir string, args ...string) *Process {
	t.Helper()
	bin := Build(t, "./cmd/sessioncert-server")
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	all := append([]string{"--data-dir", dataDir, "--port", "0", "--log-format", "json"}, args...)
	cmd := exec.Command(bin, all...)
	cmd.Env = append(os.Environ(), "SESSIONCERT_ADMIN_PASSWORD="+AdminPassword)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{Cmd: cmd, DataDir: dataDir, done: make(chan error, 1), logs: &logTail{}}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.logs.add(line)
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
				urls <- rec.URL
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.Stop(t) })

	select {
	case p.URL = <-urls:
	case err := <-p.done:
		t.Fatalf("sessioncert-server exited before serving: %v\n%s", err, p.logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("sessioncert-server did not start in time\n%s", p.logs)
	}
	p.Host = strings.TrimPrefix(p.URL, "https://")
	p.RootCAs = x509.NewCertPool()
	bundle, err := os.ReadFile(filepath.Join(dataDir, "pki", "ca-bundle.pem"))
	if err != nil || !p.RootCAs.AppendCertsFromPEM(bundle) {
		t.Fatalf("read the ca bundle: %v", err)
	}
	return p
}

// Signal sends sig to the process.
func (p *Process) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// Wait waits for the process to exit and returns its error.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop sends SIGTERM and waits for the process to exit; it kills it after
// 30 seconds.
func (p *Process) Stop(t testing.TB) {
	if p.Cmd.ProcessState != nil {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil && ctx.Err() != nil {
		_ = p.Cmd.Process.Kill()
		t.Errorf("sessioncert-server did not stop on SIGTERM\n%s", p.logs)
	}
}

// Logs returns the last lines the process logged.
func (p *Process) Logs() string { return p.logs.String() }

// logTail keeps the last lines of a log.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
	if len(l.lines) > 200 {
		l.lines = l.lines[len(l.lines)-200:]
	}
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// Env returns a view of the process for the helpers of Env (Client, Login,
// IssueCertificate and the like). Its Server and Clock are nil.
func (p *Process) Env() *Env {
	e := &Env{URL: p.URL, Host: p.Host, DataDir: p.DataDir, RootCAs: p.RootCAs}
	e.HTTP = e.NewHTTPClient(nil)
	return e
}
