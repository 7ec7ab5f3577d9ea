// Package sdk is the client-side helper of sessioncert for Go services. It
// logs in to the controller, obtains an API Session Certificate for a fresh
// private key, hands it to TLS clients and replaces it before it runs out:
// when RenewAt of its validity has passed, and at once when the controller
// has ended the session, after logging in again.
//
// Renewal is lazy: it happens on use, in Credential, Certificate, a request
// of a Transport or a TLS handshake of a TLSConfig, never on a timer. A
// client certificate is only read during a handshake, so a certificate
// renewed at the next handshake is as good as one renewed on a timer, and
// the SDK then keeps no background goroutine and follows an injected clock
// exactly. On use the SDK also checks, once RenewAt of the session's idle
// timeout has passed since the last call, that the session is still live,
// which keeps an idle session from expiring while its certificate is in use.
//
// Between those checks the SDK cannot see a session end (a logout
// elsewhere, an administrator's delete, expiry on the controller) or a
// certificate being deleted. Whoever meets the refusal reports it with
// Invalidate, and the next use obtains a fresh certificate, logging in again
// when the session has ended; a Transport does that by itself.
//
// The certificate is only one half of what an edge router checks: the
// other is the token of the session that created it. Credential returns the
// two together, and Transport sends them together.
package sdk

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"

	"github.com/sessioncert/sessioncert/client"
	"github.com/sessioncert/sessioncert/client/authentication"
	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/models"
)

// DefaultRenewAt is the fraction of a certificate's validity window, and of
// a session's idle timeout, after which the SDK renews the certificate or
// checks the session.
const DefaultRenewAt = 2.0 / 3.0

const (
	// renewTimeout bounds one renewal: a session check, a login, and the
	// certificate request, which each make one request.
	renewTimeout = time.Minute

	// retryInterval is how long after a failed renewal the next attempt
	// waits: meanwhile the current certificate is handed out while it is
	// still valid and not refused, and otherwise the renewal's error. It
	// keeps a controller outage from costing a request per handshake.
	retryInterval = 10 * time.Second

	// refusedInterval is the least time between two renewals forced by
	// Invalidate. A peer that refuses every certificate, such as a router
	// that trusts another CA, then costs the controller one certificate
	// request per interval rather than one per request.
	refusedInterval = 5 * time.Second
)

// Config configures an SDK. Client and Credentials are required.
type Config struct {
	// Client is the generated client of the controller, whose transport
	// trusts the controller's TLS certificate.
	Client *client.Sessioncert

	// Credentials log in, at first use and whenever the session has ended.
	Credentials Credentials

	// KeyType is the kind of key generated for each certificate; the zero
	// value means KeyP256.
	KeyType KeyType

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Logger receives the SDK's lifecycle events (login, issue, renewal
	// failures); nil discards them. Tokens and keys are never logged.
	Logger *slog.Logger

	// RenewAt is the fraction, between 0 and 1 exclusive, of a
	// certificate's validity window (NotBefore to NotAfter) after which it
	// is renewed, and of the session's idle timeout after which the SDK
	// checks that the session is live. Zero means DefaultRenewAt.
	RenewAt float64
}

// SDK holds one API session and its current certificate. Create it with New;
// it is safe for concurrent use, and concurrent callers during a renewal
// share that one renewal.
type SDK struct {
	cfg  Config
	log  *slog.Logger
	base context.Context
	stop context.CancelFunc
	bg   sync.WaitGroup

	mu      sync.Mutex
	sess    *apiSession // nil before the first login and once a session ended
	cur     *issued     // nil before the first certificate
	pending *renewal    // the renewal in flight, shared by its callers
	retryAt time.Time   // after a failed renewal: no new attempt before
	lastErr error       // the error of that renewal; nil when cur was kept
	refused *issued     // cur, once Invalidate reported it refused
	forceAt time.Time   // when a refused cur is replaced
	forced  time.Time   // when the last renewal forced by a refusal started
	closed  bool
}

// apiSession is a session the SDK logged in to. checkAt is written under
// SDK.mu.
type apiSession struct {
	id      string
	token   string
	timeout time.Duration // idle timeout; zero when the controller did not say
	checkAt time.Time     // when to confirm it is still live
}

// issued is a certificate and the session it belongs to.
type issued struct {
	id      string
	cert    *tls.Certificate
	cas     *x509.CertPool
	sess    *apiSession
	renewAt time.Time
}

// renewal is one run of refresh, awaited by every caller that wanted a
// certificate meanwhile.
type renewal struct {
	done    chan struct{}
	waiters int // callers sharing it; read by tests
	res     *issued
	err     error
}

// New returns an SDK for cfg. It makes no request: the first use logs in.
// It returns an error when Client or Credentials is nil, KeyType is unknown
// (matching ErrUnknownKeyType) or RenewAt is outside [0, 1).
func New(cfg Config) (*SDK, error) {
	if cfg.Client == nil {
		return nil, errors.New("sdk: config: no client")
	}
	if cfg.Credentials == nil {
		return nil, errors.New("sdk: config: no credentials")
	}
	if cfg.KeyType == "" {
		cfg.KeyType = KeyP256
	}
	known := false
	for _, t := range KeyTypes() {
		known = known || t == cfg.KeyType
	}
	if !known {
		return nil, fmt.Errorf("%w %q", ErrUnknownKeyType, string(cfg.KeyType))
	}
	if cfg.RenewAt < 0 || cfg.RenewAt >= 1 {
		return nil, fmt.Errorf("sdk: config: renew at %v is outside [0, 1)", cfg.RenewAt)
	}
	if cfg.RenewAt == 0 {
		cfg.RenewAt = DefaultRenewAt
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &SDK{cfg: cfg, log: cfg.Logger}
	s.base, s.stop = context.WithCancel(context.Background())
	return s, nil
}

// Credential is what an edge router checks: a certificate and the token of
// the session that obtained it. Take both from one Credential; a token and a
// certificate taken apart may straddle a re-login and then belong to
// different sessions, which a router refuses.
type Credential struct {
	// Certificate is the client certificate with its chain, private key
	// and Leaf. It is shared, so callers must not modify it.
	Certificate *tls.Certificate

	// Token is the session token, sent to a router as zt-session.
	Token string

	// SessionID is the id of the API session; CertificateID that of the
	// certificate within it. They name the credential in logs.
	SessionID     string
	CertificateID string

	// CAs is the pool of the CA bundle ("cas") the controller sent with the
	// certificate: the CAs that issue session certificates, roots included.
	CAs *x509.CertPool
}

// Credential returns the current certificate and the token of its session,
// renewing first as Certificate does. It returns the errors of Certificate.
func (s *SDK) Credential(ctx context.Context) (Credential, error) {
	iss, err := s.current(ctx)
	if err != nil {
		return Credential{}, err
	}
	return iss.credential(), nil
}

// Invalidate reports that a peer refused c: an edge router answered
// INVALID_API_SESSION or CERTIFICATE_NOT_BOUND, the controller answered 401
// to its token, or a TLS handshake with its certificate was refused. The
// next use then obtains a new certificate instead of handing c out again,
// and logs in again first when the session has ended. A renewal forced this
// way starts at most once per 5 seconds; until then c is still handed out.
//
// Invalidate of a credential that is no longer the current one does
// nothing, so every caller that met the same refusal may report it and one
// renewal follows. It makes no request and never blocks on one.
func (s *SDK) Invalidate(c Credential) {
	if c.Certificate == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur
	if cur == nil || cur.cert != c.Certificate || s.refused == cur {
		return
	}
	s.refused = cur
	s.forceAt = s.cfg.Now()
	if next := s.forced.Add(refusedInterval); !s.forced.IsZero() && s.forceAt.Before(next) {
		s.forceAt = next
	}
	s.log.Info("certificate refused by a peer; renewing",
		slog.String("certificateId", cur.id), slog.String("apiSessionId", cur.sess.id),
		slog.Time("renewAt", s.forceAt))
}

// TLSConfig returns a client configuration whose GetClientCertificate hands
// out the current certificate, renewing it first when it is due; a failure
// to obtain one fails the handshake with that error. It suits servers that
// admit by the certificate alone. An edge router also wants the token of
// the certificate's session, which Transport sends with it; for other
// protocols, take a Credential and present its Certificate.
//
// RootCAs is left nil, meaning the system roots: the SDK cannot know which
// CA signs the server the caller dials, and only learns the controller's
// CAs with the first certificate. Set it to the pool of the edge router's
// CA; when that is the controller's CA, Credential returns it as CAs.
func (s *SDK) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			ctx := cri.Context()
			if ctx == nil { // a request info not made by crypto/tls
				ctx = context.Background()
			}
			return s.Certificate(ctx)
		},
	}
}

// Certificate returns the current certificate, with its chain and Leaf set;
// it is shared, so callers must not modify it. It suits servers that admit
// by the certificate alone; to send the session's token with it, use
// Credential.
//
// When none was issued yet, RenewAt of its window has passed or Invalidate
// reported it refused, Certificate first obtains a new one; when the session
// has been idle for RenewAt of its timeout, it first checks that the session
// is live, and logs in again and obtains a new certificate when it is not.
// Concurrent callers wait for that same renewal, up to their ctx. A renewal
// that fails while the current certificate is still valid and not refused is
// logged, and that certificate is returned; otherwise the renewal's error is.
// Either way the next attempt comes 10 seconds later.
//
// Errors: ErrClosed after Close; the ctx error when ctx ends first; an
// *APIError for a controller's refusal (CodeInvalidAuth when the login
// failed); otherwise a wrapped network or TLS error.
func (s *SDK) Certificate(ctx context.Context) (*tls.Certificate, error) {
	iss, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	return iss.cert, nil
}

// Close ends the SDK: it stops a renewal in flight, logs the session out,
// which ends every certificate the SDK obtained, and makes later calls
// return ErrClosed. A session the controller has already ended is not an
// error. It returns an *APIError or a network error when the logout fails;
// calling it again returns nil.
func (s *SDK) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.stop()
	s.mu.Unlock()

	// A login in flight could otherwise leave a session behind.
	s.bg.Wait()
	s.mu.Lock()
	sess := s.sess
	s.sess, s.cur = nil, nil
	s.mu.Unlock()
	if sess == nil {
		return nil
	}

	_, err := s.cfg.Client.CurrentAPISession.DeleteCurrentAPISessionContext(ctx,
		&current_api_session.DeleteCurrentAPISessionParams{}, sess.auth())
	if err != nil && !hasCode(err, CodeUnauthorized) {
		return wrap("deleteCurrentAPISession", err)
	}
	s.log.Info("logged out", slog.String("apiSessionId", sess.id))
	return nil
}

// current returns the certificate to use now, starting or joining a renewal
// when it is due.
func (s *SDK) current(ctx context.Context) (*issued, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	now := s.cfg.Now()
	if cur := s.cur; cur != nil && s.usable(cur, now) {
		s.mu.Unlock()
		return cur, nil
	}
	if s.lastErr != nil && now.Before(s.retryAt) {
		err := s.lastErr
		s.mu.Unlock()
		return nil, err
	}
	r := s.pending
	if r == nil {
		r = &renewal{done: make(chan struct{})}
		s.pending = r
		if s.cur != nil && s.cur == s.refused {
			s.forced = now
		}
		s.bg.Add(1)
		go s.renew(r)
	}
	r.waiters++
	s.mu.Unlock()

	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("sdk: wait for certificate: %w", ctx.Err())
	}
}

// usable reports whether cur may be handed out at now without a renewal.
// Called with s.mu held.
func (s *SDK) usable(cur *issued, now time.Time) bool {
	refused := cur == s.refused
	if refused && !now.Before(s.forceAt) {
		return false
	}
	if !refused && now.Before(s.retryAt) && now.Before(cur.cert.Leaf.NotAfter) {
		return true
	}
	return cur.sess == s.sess && now.Before(cur.renewAt) &&
		(cur.sess.checkAt.IsZero() || now.Before(cur.sess.checkAt))
}

// renew runs one renewal for r and its waiters. It runs on the SDK's own
// context rather than a caller's, so that one caller giving up does not fail
// the others.
func (s *SDK) renew(r *renewal) {
	defer s.bg.Done()
	ctx, cancel := context.WithTimeout(s.base, renewTimeout)
	defer cancel()

	res, err := s.refresh(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = nil
	now := s.cfg.Now()
	switch {
	case err == nil:
		s.retryAt, s.lastErr = time.Time{}, nil
		r.res = res
	case s.closed:
		r.err = err
	case s.cur != nil && s.cur != s.refused && now.Before(s.cur.cert.Leaf.NotAfter):
		// The certificate still works at a router; a failed renewal is
		// worth a warning, not an outage.
		s.log.Warn("certificate renewal failed; using the current certificate",
			slog.String("certificateId", s.cur.id),
			slog.Time("notAfter", s.cur.cert.Leaf.NotAfter),
			slog.Any("error", err))
		s.retryAt, s.lastErr = now.Add(retryInterval), nil
		r.res = s.cur
	default:
		s.log.Warn("certificate renewal failed", slog.Any("error", err))
		s.retryAt, s.lastErr = now.Add(retryInterval), err
		r.err = err
	}
	close(r.done)
}

// refresh brings the session and the certificate up to date: it confirms a
// session that has been idle for a while, logs in when there is none, and
// issues a certificate when the current one is due, was refused or belongs
// to an ended session.
func (s *SDK) refresh(ctx context.Context) (*issued, error) {
	s.mu.Lock()
	sess, cur := s.sess, s.cur
	refused := cur != nil && cur == s.refused
	checkAt := time.Time{}
	if sess != nil {
		checkAt = sess.checkAt
	}
	s.mu.Unlock()
	now := s.cfg.Now()

	// A session idle for RenewAt of its timeout may have expired or been
	// deleted; asking also counts as activity and so keeps it alive.
	if sess != nil && !checkAt.IsZero() && !now.Before(checkAt) {
		live, err := s.checkSession(ctx, sess)
		if err != nil {
			return nil, err
		}
		if !live {
			s.ended(sess)
			sess = nil
		}
	}

	if sess == nil {
		var err error
		if sess, err = s.login(ctx); err != nil {
			return nil, err
		}
	}

	if cur != nil && cur.sess == sess && !refused && now.Before(cur.renewAt) {
		return cur, nil
	}

	// A 401 here means the session ended since it was last seen live. A
	// refused certificate comes here without a session check first: a
	// session that is live needs only the new certificate.
	res, err := s.issue(ctx, sess)
	if hasCode(err, CodeUnauthorized) {
		s.ended(sess)
		if sess, err = s.login(ctx); err != nil {
			return nil, err
		}
		res, err = s.issue(ctx, sess)
	}
	return res, err
}

// checkSession reports whether sess is live, refreshing its check time.
func (s *SDK) checkSession(ctx context.Context, sess *apiSession) (bool, error) {
	_, err := s.cfg.Client.CurrentAPISession.GetCurrentAPISessionContext(ctx,
		&current_api_session.GetCurrentAPISessionParams{}, sess.auth())
	if hasCode(err, CodeUnauthorized) {
		return false, nil
	}
	if err != nil {
		return false, wrap("getCurrentAPISession", err)
	}
	s.touched(sess)
	return true, nil
}

// login logs in with the credentials and makes the new session current.
func (s *SDK) login(ctx context.Context) (*apiSession, error) {
	var ok *authentication.AuthenticateOK
	err := retryUnavailable(ctx, func() error {
		var err error
		ok, err = s.cfg.Credentials.Login(ctx, s.cfg.Client)
		return err
	})
	if err != nil {
		return nil, err
	}
	sess, err := sessionOf(ok)
	if err != nil {
		return nil, err
	}

	s.mu.Lock()
	s.sess = sess
	s.mu.Unlock()
	s.touched(sess)
	s.log.Info("logged in", slog.String("apiSessionId", sess.id),
		slog.Duration("idleTimeout", sess.timeout))
	return sess, nil
}

func sessionOf(ok *authentication.AuthenticateOK) (*apiSession, error) {
	if ok == nil || ok.Payload == nil || ok.Payload.Data == nil {
		return nil, errors.New("sdk: authenticate: reply without a session")
	}
	d := ok.Payload.Data
	sess := &apiSession{id: deref(d.ID), token: ok.ZtSession}
	if sess.token == "" {
		sess.token = deref(d.Token)
	}
	if sess.token == "" {
		return nil, errors.New("sdk: authenticate: reply without a session token")
	}
	sess.timeout = time.Duration(deref(d.ExpirationSeconds)) * time.Second
	return sess, nil
}

// issue has the session sign a CSR for a fresh key and makes the result the
// current certificate.
func (s *SDK) issue(ctx context.Context, sess *apiSession) (*issued, error) {
	key, err := GenerateKey(s.cfg.KeyType)
	if err != nil {
		return nil, err
	}
	csr, err := NewCSR(key)
	if err != nil {
		return nil, err
	}

	var created *current_api_session.CreateCurrentAPISessionCertificateCreated
	err = retryUnavailable(ctx, func() error {
		var err error
		created, err = s.cfg.Client.CurrentAPISession.CreateCurrentAPISessionCertificateContext(ctx,
			&current_api_session.CreateCurrentAPISessionCertificateParams{
				SessionCertificate: &models.CurrentAPISessionCertificateCreate{Csr: &csr},
			}, sess.auth())
		return wrap("createCurrentApiSessionCertificate", err)
	})
	if err != nil {
		return nil, err
	}
	s.touched(sess)

	// Check what came back before handing it to TLS.
	d := created.Payload.Data
	if d == nil {
		return nil, errors.New("sdk: createCurrentApiSessionCertificate: reply without data")
	}
	cert, err := ParseChain(deref(d.Certificate), key)
	if err != nil {
		return nil, err
	}
	cas, err := ParseCAs(deref(d.Cas))
	if err != nil {
		return nil, err
	}
	leaf := cert.Leaf
	window := leaf.NotAfter.Sub(leaf.NotBefore)
	res := &issued{
		id:      deref(d.ID),
		cert:    cert,
		cas:     cas,
		sess:    sess,
		renewAt: leaf.NotBefore.Add(time.Duration(float64(window) * s.cfg.RenewAt)),
	}

	s.mu.Lock()
	if s.sess == sess {
		s.cur, s.refused = res, nil
	}
	s.mu.Unlock()
	s.log.Info("certificate issued", slog.String("certificateId", res.id),
		slog.String("apiSessionId", sess.id),
		slog.String("serial", hex.EncodeToString(leaf.SerialNumber.Bytes())),
		slog.Time("notAfter", leaf.NotAfter), slog.Time("renewAt", res.renewAt))
	return res, nil
}

// touched records activity of sess at the controller: its idle timer
// restarted, so the next check is due RenewAt of the timeout from now.
func (s *SDK) touched(sess *apiSession) {
	if sess.timeout <= 0 {
		return
	}
	next := s.cfg.Now().Add(time.Duration(float64(sess.timeout) * s.cfg.RenewAt))
	s.mu.Lock()
	sess.checkAt = next
	s.mu.Unlock()
}

// ended forgets sess, and its certificate with it: the controller ended it.
func (s *SDK) ended(sess *apiSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess != sess {
		return
	}
	s.sess = nil
	if s.cur != nil && s.cur.sess == sess {
		s.cur = nil
	}
	s.log.Info("api session ended; logging in again", slog.String("apiSessionId", sess.id))
}

func (iss *issued) credential() Credential {
	return Credential{
		Certificate:   iss.cert,
		Token:         iss.sess.token,
		SessionID:     iss.sess.id,
		CertificateID: iss.id,
		CAs:           iss.cas,
	}
}

func (a *apiSession) auth() runtime.ClientAuthInfoWriter {
	return httptransport.APIKeyAuth("zt-session", "header", a.token)
}
