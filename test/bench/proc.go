package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"

	"github.com/sessioncert/sessioncert/client"
)

// benchAdminPassword is the admin password of servers the benchmarks start.
const benchAdminPassword = "bench-admin-password"

// serverProc is sessioncert-server running as its own process.
type serverProc struct {
	cmd      *exec.Cmd
	host     string
	dataDir  string
	roots    *x509.CertPool
	pprofURL string // set when started with --pprof-addr
	stopOnce sync.Once
}

// startServer runs the server binary on a free port with a fresh data
// directory and the given extra flags, and waits until it serves.
func startServer(bin string, args ...string) (*serverProc, error) {
	dir, err := os.MkdirTemp("", "sessioncert-bench-")
	if err != nil {
		return nil, err
	}
	// The audit trail stays on, in the data directory, as it is by
	// default: its synced lines are part of what an issuance costs.
	all := append([]string{"--data-dir", dir, "--port", "0", "--log-format", "json"}, args...)
	cmd := exec.Command(bin, all...)
	cmd.Env = append(os.Environ(), "SESSIONCERT_ADMIN_PASSWORD="+benchAdminPassword)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	urls := make(chan string, 1)
	pprofURLs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				continue
			}
			switch rec.Msg {
			case "serving":
				urls <- rec.URL
			case "serving the profiler":
				pprofURLs <- rec.URL
			}
		}
	}()
	p := &serverProc{cmd: cmd, dataDir: dir}
	select {
	case u := <-urls:
		p.host = strings.TrimPrefix(u, "https://")
		select {
		case p.pprofURL = <-pprofURLs:
		default:
		}
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, errors.New("server did not start")
	}
	p.roots = x509.NewCertPool()
	b, err := os.ReadFile(filepath.Join(dir, "pki", "ca-bundle.pem"))
	if err != nil || !p.roots.AppendCertsFromPEM(b) {
		p.stop()
		return nil, fmt.Errorf("read ca bundle: %w", err)
	}
	return p, nil
}

func (p *serverProc) stop() { p.stopOnce.Do(p.terminate) }

func (p *serverProc) terminate() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
	}
	_ = os.RemoveAll(p.dataDir)
}

// client returns a generated client over its own HTTP/1.1 connections.
func (p *serverProc) client(conns int) *client.Sessioncert {
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: p.roots, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
	}}
	rt := httptransport.NewWithClient(p.host, client.DefaultBasePath, []string{"https"}, hc)
	return client.New(rt, strfmt.Default)
}

// cpuTime returns the user plus system CPU time the process has used, read
// from /proc/<pid>/stat.
func (p *serverProc) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; fields after it start past ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
}

// peakRSS returns the process's peak resident set size in bytes (VmHWM).
func (p *serverProc) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmHWM")
}

// profile records a CPU profile of the server for d into a file and
// returns its path. The server must run with --pprof-addr.
func (p *serverProc) profile(d time.Duration) (string, error) {
	if p.pprofURL == "" {
		return "", errors.New("server runs without --pprof-addr")
	}
	resp, err := http.Get(fmt.Sprintf("%sprofile?seconds=%d", p.pprofURL, int(d.Seconds())))
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	f, err := os.CreateTemp("", "sessioncert-cpu-*.prof")
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	if _, err := io.Copy(f, resp.Body); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// selfCPU returns this process's user plus system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// percentile returns the q-th quantile (0..1) of sorted durations.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(q * float64(len(d)-1))
	return d[i]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
