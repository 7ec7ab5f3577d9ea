package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/sessioncert/sessioncert/client/authentication"
	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/ca"

	httptransport "github.com/go-openapi/runtime/client"
)

// csrFor returns the PEM of a CSR for a new key of the named type.
func csrFor(keyType string) (string, error) {
	var key crypto.Signer
	var err error
	switch keyType {
	case "P-256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "P-384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "RSA-2048":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "Ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return "", fmt.Errorf("unknown key type %s", keyType)
	}
	if err != nil {
		return "", err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: "bench"}}, key)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// devCA returns a CA like the server's development one.
func devCA() (*ca.CA, func(), error) {
	dir, err := os.MkdirTemp("", "sessioncert-bench-ca-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	pki, err := ca.EnsureDevPKI(dir, time.Now(), nil)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	chain, signer, err := ca.LoadFiles(pki.CACert, pki.CAKey)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	c, err := ca.New(ca.Config{Chain: chain, Signer: signer, Backdate: ca.DefaultBackdate,
		TrustDomain: spiffeid.RequireTrustDomainFromString("sessioncert.local")})
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return c, cleanup, nil
}

// rawIssue measures the crypto of issuance alone, in this process, on all
// cores: PEM decode, parse and check the CSR, sign, self-check. It returns
// certificates per second and CPU time per certificate.
func rawIssue(c *ca.CA, csrPEM string, d time.Duration) (float64, time.Duration, error) {
	var n atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	cpu0, t0 := selfCPU(), time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				csr, err := ca.ParseCSR([]byte(csrPEM))
				if err == nil {
					_, err = c.Sign(ca.SignRequest{CSR: csr, IdentityID: "benchidentity",
						APISessionID: "benchsession", CertificateID: "benchcert"})
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	time.Sleep(d)
	close(stop)
	wg.Wait()
	elapsed, cpu := time.Since(t0), selfCPU()-cpu0
	if err, ok := firstErr.Load().(error); ok {
		return 0, 0, err
	}
	count := n.Load()
	return float64(count) / elapsed.Seconds(), cpu / time.Duration(max(count, 1)), nil
}

// benchIssuance measures issuance raw and end to end, and how much the
// service costs around the crypto.
func benchIssuance(r *report) error {
	c, cleanup, err := devCA()
	if err != nil {
		return err
	}
	defer cleanup()

	// (a) Raw, in process, per key type; median of three runs.
	rawCPU := map[string]time.Duration{}
	for _, kt := range []string{"P-256", "P-384", "RSA-2048", "Ed25519"} {
		csr, err := csrFor(kt)
		if err != nil {
			return err
		}
		var rates, cpus []float64
		for range 3 {
			rate, cpu, err := rawIssue(c, csr, 2*time.Second)
			if err != nil {
				return err
			}
			rates = append(rates, rate)
			cpus = append(cpus, float64(cpu.Microseconds()))
		}
		rawCPU[kt] = time.Duration(median(cpus)) * time.Microsecond
		r.add("issuance", "raw "+kt+" certs/s (all cores)", fmt.Sprintf("%.0f", median(rates)),
			fmt.Sprintf("%d cores, median of 3", runtime.GOMAXPROCS(0)))
		r.add("issuance", "raw "+kt+" CPU µs/cert", fmt.Sprintf("%.0f", median(cpus)), "decode+parse+check+sign+verify")
	}

	// (b) End to end over HTTPS against the server binary.
	p, err := startServer(serverBin, "--cert-rate-burst", "0", "--max-certs-per-session", "0",
		"--pprof-addr", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer p.stop()
	csr, err := csrFor("P-256")
	if err != nil {
		return err
	}
	login, err := p.client(1).Authentication.Authenticate(&authentication.AuthenticateParams{
		Method: "password",
		Auth:   &models.Authenticate{Username: "admin", Password: strfmt.Password(benchAdminPassword)},
	})
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	authInfo := httptransport.APIKeyAuth("zt-session", "header", login.ZtSession)

	for _, conc := range []int{1, 8, 32} {
		cl := p.client(conc).CurrentAPISession
		issue := func() error {
			params := &current_api_session.CreateCurrentAPISessionCertificateParams{
				SessionCertificate: &models.CurrentAPISessionCertificateCreate{Csr: &csr},
			}
			_, err := cl.CreateCurrentAPISessionCertificate(params, authInfo)
			return err
		}
		// Warm the connections up, then measure.
		if _, err := drive(conc, time.Second, issue); err != nil {
			return err
		}
		cpu0, err := p.cpuTime()
		if err != nil {
			return err
		}
		// At the highest concurrency, profile the server meanwhile.
		profc := make(chan string, 1)
		if conc == 32 {
			go func() {
				path, err := p.profile(4 * time.Second)
				if err != nil {
					fmt.Fprintln(os.Stderr, "profile:", err)
				}
				profc <- path
			}()
		}
		res, err := drive(conc, 5*time.Second, issue)
		if err != nil {
			return err
		}
		if conc == 32 {
			if path := <-profc; path != "" {
				defer func() { _ = os.Remove(path) }()
				groups, err := profileSummary(serverBin, path)
				if err != nil {
					return err
				}
				for _, g := range groups {
					if g.share == 0 {
						continue // not on this run's path (audit off, say)
					}
					r.add("issuance", "server CPU share: "+g.name, fmt.Sprintf("%.1f%%", g.share),
						"CPU profile at c=32, cumulative")
				}
			}
		}
		cpu1, err := p.cpuTime()
		if err != nil {
			return err
		}
		serverCPU := (cpu1 - cpu0) / time.Duration(max(res.count, 1))
		name := fmt.Sprintf("e2e P-256 c=%d", conc)
		r.add("issuance", name+" certs/s", fmt.Sprintf("%.0f", res.rate()), "HTTPS, persisted, separate processes")
		r.add("issuance", name+" p50 / p99", fmt.Sprintf("%s / %s", res.p(0.50), res.p(0.99)), "")
		r.add("issuance", name+" server CPU µs/cert", fmt.Sprintf("%d", serverCPU.Microseconds()),
			"from /proc/<pid>/stat")
		r.add("issuance", name+" CPU efficiency", fmt.Sprintf("%.2f", float64(rawCPU["P-256"])/float64(serverCPU)),
			"raw CPU/cert ÷ server CPU/cert; target ≥ 0.8")
	}
	rss, err := p.peakRSS()
	if err != nil {
		return err
	}
	r.add("issuance", "server peak RSS", fmt.Sprintf("%.1f MiB", float64(rss)/(1<<20)), "VmHWM after all runs")
	boltRate := r.last("e2e P-256 c=32 certs/s")
	p.stop()

	// (e) The same on etcd: a one-member etcd as its own process.
	etcdRate, err := issuanceOnEtcd(csr, 32)
	if err != nil {
		return err
	}
	r.add("issuance", "e2e P-256 c=32 certs/s on etcd", fmt.Sprintf("%.0f", etcdRate),
		"one-member etcd, separate process, fsync")
	if boltRate > 0 {
		r.add("issuance", "etcd ÷ bolt throughput", fmt.Sprintf("%.2f", etcdRate/boltRate), "same run, c=32")
	}
	return nil
}

// issuanceOnEtcd runs a one-member etcd and the server on it, and measures
// issuance at concurrency conc.
func issuanceOnEtcd(csr string, conc int) (float64, error) {
	etcdBin := filepath.Join(filepath.Dir(serverBin), "sessioncert-devetcd")
	dir, err := os.MkdirTemp("", "sessioncert-bench-etcd-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	clientURL, peerURL := "http://"+freeAddr(), "http://"+freeAddr()
	cmd := exec.Command(etcdBin, "--data-dir", dir, "--listen-client", clientURL, "--listen-peer", peerURL)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s (make build): %w", etcdBin, err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()

	var p *serverProc
	for range 50 { // etcd takes a moment to serve
		if p, err = startServer(serverBin, "--store", "etcd", "--etcd-endpoints", clientURL,
			"--cert-rate-burst", "0", "--max-certs-per-session", "0"); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return 0, err
	}
	defer p.stop()
	login, err := p.client(1).Authentication.Authenticate(&authentication.AuthenticateParams{
		Method: "password",
		Auth:   &models.Authenticate{Username: "admin", Password: strfmt.Password(benchAdminPassword)},
	})
	if err != nil {
		return 0, fmt.Errorf("login: %w", err)
	}
	authInfo := httptransport.APIKeyAuth("zt-session", "header", login.ZtSession)
	cl := p.client(conc).CurrentAPISession
	issue := func() error {
		params := &current_api_session.CreateCurrentAPISessionCertificateParams{
			SessionCertificate: &models.CurrentAPISessionCertificateCreate{Csr: &csr},
		}
		_, err := cl.CreateCurrentAPISessionCertificate(params, authInfo)
		return err
	}
	if _, err := drive(conc, time.Second, issue); err != nil {
		return 0, err
	}
	res, err := drive(conc, 5*time.Second, issue)
	if err != nil {
		return 0, err
	}
	return res.rate(), nil
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// loadResult is the outcome of a closed-loop load run.
type loadResult struct {
	count     int64
	elapsed   time.Duration
	latencies []time.Duration
}

func (l loadResult) rate() float64 { return float64(l.count) / l.elapsed.Seconds() }

func (l loadResult) p(q float64) time.Duration {
	return percentile(l.latencies, q).Round(10 * time.Microsecond)
}

// drive runs op in conc goroutines back to back for d and records each
// call's latency. The first error stops the run.
func drive(conc int, d time.Duration, op func() error) (loadResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var res loadResult
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for ctx.Err() == nil {
				t0 := time.Now()
				if err := op(); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					break
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			res.latencies = append(res.latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.count = int64(len(res.latencies))
	return res, firstErr
}
