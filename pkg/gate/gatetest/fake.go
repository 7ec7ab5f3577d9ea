// Package gatetest is a fake sessioncert controller for tests of edge
// routers: it speaks the few shapes of the router API that pkg/gate uses
// (password login, createAdmission, listEvents, createHeartbeat) over real
// TLS, and lets a test decide the grants, emit removal events, hold an
// admission in flight, and cut the router off.
//
// Use it where a real controller cannot stage a case, such as a removal
// that overtakes a grant; everything else is better tested against
// pkg/server/servertest.
package gatetest

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"

	"github.com/sessioncert/sessioncert/client"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/ca"
	"github.com/sessioncert/sessioncert/pkg/session"
)

// Credentials of the router identity of every fake controller.
const (
	Username = "edge-router"
	Password = "edge-router-password"
)

// Options adjust a fake controller.
type Options struct {
	// NotRouter makes the router API answer 401 to every session, as the
	// real controller does for an identity of type User.
	NotRouter bool

	// History is how many events are kept; older cursors get 410
	// CURSOR_EXPIRED. Default 1000.
	History int
}

// Grant is what the fake answers for an admitted token and leaf.
type Grant struct {
	APISessionID       string
	IdentityID         string
	IdentityName       string
	CertificateID      string
	SessionExpiresAt   time.Time
	CertificateValidTo time.Time
}

type grantKey struct{ token, fingerprint string }

type event struct {
	cursor       uint64
	typ, session string
	fingerprints []string
}

// Controller is a running fake controller. Its methods are safe for
// concurrent use.
type Controller struct {
	// URL is https://127.0.0.1:port; Client is a generated client that
	// trusts it.
	URL    string
	Client *client.Sessioncert

	opts Options
	srv  *httptest.Server

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced when events are added
	grants     map[grantKey]Grant
	ended      map[string]bool // sessions that have ended
	events     []event
	cursor     uint64
	tokens     map[string]bool // live router tokens
	nextToken  int
	down       bool
	eventsDown bool
	admitHook  func(token string)
	logins     int
	admissions int
	heartbeats [][]string
}

// Start runs a fake controller until the test ends.
func Start(t testing.TB, o Options) *Controller {
	t.Helper()
	if o.History == 0 {
		o.History = 1000
	}
	c := &Controller{
		opts:    o,
		changed: make(chan struct{}),
		grants:  make(map[grantKey]Grant),
		ended:   make(map[string]bool),
		tokens:  make(map[string]bool),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /edge/client/v1/authenticate", c.authenticate)
	mux.HandleFunc("POST /edge/router/v1/admissions", c.routerOnly(c.admit))
	mux.HandleFunc("GET /edge/router/v1/events", c.routerOnly(c.listEvents))
	mux.HandleFunc("POST /edge/router/v1/heartbeats", c.routerOnly(c.heartbeat))
	c.srv = httptest.NewTLSServer(mux)
	t.Cleanup(c.close)
	c.URL = c.srv.URL
	rt := httptransport.NewWithClient(c.srv.Listener.Addr().String(), client.DefaultBasePath,
		[]string{"https"}, c.srv.Client())
	c.Client = client.New(rt, strfmt.Default)
	return c
}

// close stops the server; pending long polls are woken so that it can.
func (c *Controller) close() {
	c.mu.Lock()
	c.down = true
	c.wake()
	c.mu.Unlock()
	c.srv.CloseClientConnections()
	c.srv.Close()
}

// wake tells long polls that something changed. The caller holds c.mu.
func (c *Controller) wake() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Admit makes createAdmission grant token with leaf.
func (c *Controller) Admit(token string, leaf *x509.Certificate, g Grant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grants[grantKey{token, ca.Fingerprint(leaf.Raw)}] = g
}

// RemoveSession ends a session: its grants stop and an apiSessionRemoved
// event is recorded.
func (c *Controller) RemoveSession(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended[id] = true
	var fps []string
	for k, g := range c.grants {
		if g.APISessionID == id {
			fps = append(fps, k.fingerprint)
			delete(c.grants, k)
		}
	}
	c.addEvent("apiSessionRemoved", id, fps)
}

// DeleteCertificate deletes one certificate of a live session and records
// a certificateDeleted event.
func (c *Controller) DeleteCertificate(sessionID string, leaf *x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fp := ca.Fingerprint(leaf.Raw)
	for k, g := range c.grants {
		if g.APISessionID == sessionID && k.fingerprint == fp {
			delete(c.grants, k)
		}
	}
	c.addEvent("certificateDeleted", sessionID, []string{fp})
}

// EndQuietly ends a session without recording an event, as if the event
// had been lost; only heartbeats can then tell.
func (c *Controller) EndQuietly(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended[id] = true
	for k, g := range c.grants {
		if g.APISessionID == id {
			delete(c.grants, k)
		}
	}
}

func (c *Controller) addEvent(typ, session string, fps []string) {
	c.cursor++
	c.events = append(c.events,
		event{cursor: c.cursor, typ: typ, session: session, fingerprints: fps})
	if len(c.events) > c.opts.History {
		c.events = slices.Delete(c.events, 0, len(c.events)-c.opts.History)
	}
	c.wake()
}

// SetDown makes every request fail with 503 while down is true, and ends
// pending long polls, as a controller that went away would.
func (c *Controller) SetDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
	c.wake()
}

// SetEventsDown makes listEvents fail with 503 while down is true, and ends
// pending long polls, while the rest of the API keeps answering: the event
// stream of a router broke, but it can still ask for admissions.
func (c *Controller) SetEventsDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.eventsDown = down
	c.wake()
}

// RevokeRouterSessions ends every session of the router, so that its next
// call is answered 401 and it must log in again.
func (c *Controller) RevokeRouterSessions() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.tokens)
}

// SetAdmitHook sets a function called with the client token after each
// admission is decided and before it is answered; it may block to hold the
// answer in flight. Nil removes it.
func (c *Controller) SetAdmitHook(f func(token string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.admitHook = f
}

// Counts returns how many logins and createAdmission calls were served.
func (c *Controller) Counts() (logins, admissions int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logins, c.admissions
}

// Heartbeats returns the session ids of each heartbeat received.
func (c *Controller) Heartbeats() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.heartbeats)
}

func (c *Controller) authenticate(w http.ResponseWriter, r *http.Request) {
	var body models.Authenticate
	err := json.NewDecoder(r.Body).Decode(&body)
	if err != nil || r.URL.Query().Get("method") != "password" {
		replyError(w, http.StatusBadRequest, "COULD_NOT_VALIDATE")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if body.Username != Username || body.Password.String() != Password {
		replyError(w, http.StatusUnauthorized, "INVALID_AUTH")
		return
	}
	c.logins++
	c.nextToken++
	tok := "router-token-" + strconv.Itoa(c.nextToken)
	c.tokens[tok] = true
	w.Header().Set("zt-session", tok)
	id := "router-session"
	reply(w, http.StatusOK, &models.CurrentAPISessionDetailEnvelope{
		Data: &models.CurrentAPISessionDetail{ID: &id, Token: &tok},
		Meta: &models.Meta{},
	})
}

// routerOnly answers 401 unless the request carries a live router token.
func (c *Controller) routerOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		down, ok := c.down, c.tokens[r.Header.Get("zt-session")] && !c.opts.NotRouter
		c.mu.Unlock()
		switch {
		case down:
			replyError(w, http.StatusServiceUnavailable, "UNAVAILABLE")
		case !ok:
			replyError(w, http.StatusUnauthorized, "UNAUTHORIZED")
		default:
			h(w, r)
		}
	}
}

func (c *Controller) admit(w http.ResponseWriter, r *http.Request) {
	var body models.AdmissionRequest
	err := json.NewDecoder(r.Body).Decode(&body)
	if err != nil || body.Token == nil || body.Certificate == nil {
		replyError(w, http.StatusBadRequest, "COULD_NOT_VALIDATE")
		return
	}
	chain, err := session.ParseChain([]byte(*body.Certificate))
	if err != nil {
		replyError(w, http.StatusBadRequest, "COULD_NOT_VALIDATE")
		return
	}
	fp := ca.Fingerprint(chain[0].Raw)

	c.mu.Lock()
	c.admissions++
	g, granted := c.grants[grantKey{*body.Token, fp}]
	tokenKnown := false
	for k, g := range c.grants {
		if k.token == *body.Token && !c.ended[g.APISessionID] {
			tokenKnown = true
		}
	}
	hook := c.admitHook
	c.mu.Unlock()
	if hook != nil {
		hook(*body.Token)
	}

	switch {
	case granted:
		reply(w, http.StatusOK, &models.AdmissionEnvelope{
			Data: &models.Admission{
				APISessionID:       &g.APISessionID,
				IdentityID:         &g.IdentityID,
				IdentityName:       &g.IdentityName,
				CertificateID:      &g.CertificateID,
				Fingerprint:        &fp,
				SessionExpiresAt:   dateTime(g.SessionExpiresAt),
				CertificateValidTo: dateTime(g.CertificateValidTo),
			},
			Meta: &models.Meta{},
		})
	case tokenKnown:
		replyError(w, http.StatusForbidden, "CERTIFICATE_NOT_BOUND")
	default:
		replyError(w, http.StatusForbidden, "INVALID_API_SESSION")
	}
}

func (c *Controller) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c.mu.Lock()
	cur, down := c.cursor, c.eventsDown
	c.mu.Unlock()
	if down {
		replyError(w, http.StatusServiceUnavailable, "UNAVAILABLE")
		return
	}
	if !q.Has("after") {
		replyEvents(w, nil, cur)
		return
	}
	after, err := strconv.ParseUint(q.Get("after"), 10, 64)
	wait, werr := strconv.Atoi(q.Get("wait"))
	if err != nil || werr != nil {
		replyError(w, http.StatusBadRequest, "COULD_NOT_VALIDATE")
		return
	}
	deadline := time.NewTimer(time.Duration(wait) * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if c.down || c.eventsDown {
			c.mu.Unlock()
			replyError(w, http.StatusServiceUnavailable, "UNAVAILABLE")
			return
		}
		oldest := c.cursor - uint64(len(c.events)) // cursor before the first event kept
		if after < oldest {
			c.mu.Unlock()
			replyError(w, http.StatusGone, "CURSOR_EXPIRED")
			return
		}
		var out []event
		for _, ev := range c.events {
			if ev.cursor > after {
				out = append(out, ev)
			}
		}
		changed := c.changed
		c.mu.Unlock()
		if len(out) > 0 {
			replyEvents(w, out, out[len(out)-1].cursor)
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			replyEvents(w, nil, after)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (c *Controller) heartbeat(w http.ResponseWriter, r *http.Request) {
	var body models.Heartbeat
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		replyError(w, http.StatusBadRequest, "COULD_NOT_VALIDATE")
		return
	}
	c.mu.Lock()
	c.heartbeats = append(c.heartbeats, body.APISessionIds)
	ended := []string{}
	for _, id := range body.APISessionIds {
		if c.ended[id] {
			ended = append(ended, id)
		}
	}
	c.mu.Unlock()
	reply(w, http.StatusOK, &models.HeartbeatResultEnvelope{
		Data: &models.HeartbeatResult{EndedAPISessionIds: ended},
		Meta: &models.Meta{},
	})
}

func replyEvents(w http.ResponseWriter, evs []event, cursor uint64) {
	data := make([]*models.Event, 0, len(evs))
	for _, ev := range evs {
		data = append(data, &models.Event{
			Cursor:       ptr(strconv.FormatUint(ev.cursor, 10)),
			Type:         ptr(ev.typ),
			APISessionID: ptr(ev.session),
			Fingerprints: append([]string{}, ev.fingerprints...),
		})
	}
	reply(w, http.StatusOK, &models.EventListEnvelope{
		Data: data,
		Meta: &models.EventMeta{Cursor: ptr(strconv.FormatUint(cursor, 10))},
	})
}

func replyError(w http.ResponseWriter, status int, code string) {
	msg := "fake controller: " + code
	reply(w, status, &models.APIErrorEnvelope{
		Error: &models.APIError{Code: &code, Message: &msg, RequestID: ptr("fake")},
	})
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func dateTime(t time.Time) *strfmt.DateTime {
	d := strfmt.DateTime(t)
	return &d
}

func ptr[T any](v T) *T { return &v }
