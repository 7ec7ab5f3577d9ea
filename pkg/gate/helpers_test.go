package gate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/gate"
	"github.com/sessioncert/sessioncert/pkg/gate/gatetest"
)

// leaf returns a throwaway client certificate; the fake controller names
// it by fingerprint only, so no CA is needed.
func leaf(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// grant returns a fake grant of session id that holds for an hour.
func grant(id string) gatetest.Grant {
	return gatetest.Grant{
		APISessionID: id, IdentityID: "identity-" + id, IdentityName: "name-" + id,
		CertificateID:    "cert-" + id,
		SessionExpiresAt: time.Now().Add(time.Hour), CertificateValidTo: time.Now().Add(time.Hour),
	}
}

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// closer records whether it was closed.
type closer struct {
	once   sync.Once
	closed chan struct{}
}

func newCloser() *closer { return &closer{closed: make(chan struct{})} }

func (c *closer) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *closer) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// waitClosed fails the test unless c is closed within a few seconds.
func waitClosed(t *testing.T, c *closer, what string) {
	t.Helper()
	select {
	case <-c.closed:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: connection still open", what)
	}
}

// harness is a gate in front of a fake controller, with its removals
// reported on a channel.
type harness struct {
	fake     *gatetest.Controller
	gate     *gate.Gate
	removals chan gate.Removal
	stop     func() error
}

// newHarness builds a gate for fake with cfg's settings; change adjusts
// the config before New. It does not start Run.
func newHarness(t *testing.T, fake *gatetest.Controller, change func(*gate.Config)) *harness {
	t.Helper()
	h := &harness{fake: fake, removals: make(chan gate.Removal, 100)}
	cfg := gate.Config{
		Client:            fake.Client,
		Username:          gatetest.Username,
		Password:          gatetest.Password,
		EventWait:         time.Second,
		HeartbeatInterval: time.Hour,
		MinBackoff:        10 * time.Millisecond,
		MaxBackoff:        50 * time.Millisecond,
		OnRemoved:         func(r gate.Removal) { h.removals <- r },
	}
	if change != nil {
		change(&cfg)
	}
	g, err := gate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.gate = g
	return h
}

// run starts Run and waits until the gate follows the stream; the test's
// end stops it and checks that it returned nil.
func (h *harness) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.gate.Run(ctx) }()
	var once sync.Once
	var err error
	h.stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case <-h.gate.Ready():
	case err := <-done:
		t.Fatalf("run ended before following: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("gate never followed the event stream")
	}
}

// waitRemoval returns the next removal of kind k, skipping others.
func (h *harness) waitRemoval(t *testing.T, k gate.RemovalKind) gate.Removal {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-h.removals:
			if r.Kind == k {
				return r
			}
		case <-deadline:
			t.Fatalf("no removal of kind %s", k)
		}
	}
}

// admissions returns how many createAdmission calls the fake served.
func (h *harness) admissions() int {
	_, n := h.fake.Counts()
	return n
}

// waitCurrent waits until the gate answers from its cache again.
func (h *harness) waitCurrent(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !h.gate.Stats().Current {
		if time.Now().After(deadline) {
			t.Fatal("the gate never became current with the event stream")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
