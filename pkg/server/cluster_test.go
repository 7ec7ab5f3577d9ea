package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/client/informational"
	"github.com/sessioncert/sessioncert/client/router"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/sdk"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
	sessionpkg "github.com/sessioncert/sessioncert/pkg/session"
	"github.com/sessioncert/sessioncert/pkg/store/etcd/etcdtest"
)

// etcdPrefix is the key prefix of the replicas a test starts.
func etcdPrefix(t *testing.T) string { return "/" + t.Name() + "/" }

// startReplicas starts n servers on one etcd cluster, sharing the CA of the
// first, as a cluster deployment does. more, when not nil, changes the
// configuration of every replica further.
func startReplicas(
	t *testing.T,
	cluster *etcdtest.Cluster,
	n int,
	more func(*server.Config),
) []*servertest.Env {
	t.Helper()
	onEtcd := func(c *server.Config) {
		c.Store.Kind = "etcd"
		c.Store.EtcdEndpoints = cluster.Endpoints()
		c.Store.EtcdPrefix = etcdPrefix(t)
		// The fault tests send many requests on one session.
		c.Certs.RateBurst = 0
		c.Certs.MaxCertsPerSession = 0
		if more != nil {
			more(c)
		}
	}
	first := servertest.Start(t, servertest.Options{Config: onEtcd})
	envs := []*servertest.Env{first}
	for range n - 1 {
		envs = append(envs, servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
			onEtcd(c)
			c.Certs.CACert, c.Certs.CAKey = sharedCA(first)
		}}))
	}
	return envs
}

// sharedCA returns the CA files of the first replica, which the others use.
func sharedCA(first *servertest.Env) (cert, key string) {
	pki := filepath.Join(first.DataDir, "pki")
	return filepath.Join(pki, "ca-intermediate.pem"), filepath.Join(pki, "ca-intermediate.key")
}

// eventually polls check until it returns nil or the watch latency bound
// passes.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// refused reports nil once e answers 401 to the session's token.
func refused(e *servertest.Env, s *servertest.Session) error {
	_, err := e.Client(nil).CurrentAPISession.GetCurrentAPISession(
		&current_api_session.GetCurrentAPISessionParams{}, s.Auth)
	var unauth *current_api_session.GetCurrentAPISessionUnauthorized
	if errors.As(err, &unauth) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("session neither accepted nor refused: %w", err)
	}
	return errors.New("session still accepted")
}

// removalOf returns the apiSessionRemoved event of the session among evs.
func removalOf(evs []*models.Event, sessionID string) *models.Event {
	for _, ev := range evs {
		if *ev.APISessionID == sessionID && *ev.Type == "apiSessionRemoved" {
			return ev
		}
	}
	return nil
}

// TestReplicasShareSessions: login on one replica, a certificate on
// another, logout on a third; every replica refuses the token, and a router
// following events from any replica sees the removal. The replicas trust
// their cached sessions for an hour, so a replica that refuses the token
// learnt of the logout from the etcd watch, not by reading the session
// again.
func TestReplicasShareSessions(t *testing.T) {
	cluster := etcdtest.Start(t, 1)
	envs := startReplicas(t, cluster, 3, func(c *server.Config) {
		c.Store.EtcdRevalidate = time.Hour
	})
	a, b, c := envs[0], envs[1], envs[2]

	admin := a.Admin(t)
	b.CreateIdentity(t, admin, "edge1", "Router", "router-password")
	r := c.Login(t, "edge1", "router-password")
	cursors := map[*servertest.Env]string{}
	for _, e := range envs {
		ok, err := e.Client(nil).Router.ListEvents(&router.ListEventsParams{}, r.Auth)
		if err != nil {
			t.Fatal(err)
		}
		cursors[e] = *ok.Payload.Meta.Cursor
	}

	s := a.Login(t, "admin", servertest.AdminPassword)
	cert := b.IssueCertificate(t, s)
	if _, code := admit(t, c, r, s.Token, cert.Chain); code != "" {
		t.Fatalf("replica C refuses a certificate issued by B for a session of A: %s", code)
	}
	// Every replica has the session in its cache now.
	for i, e := range envs {
		if err := refused(e, s); err == nil {
			t.Fatalf("replica %c refuses the session before the logout", 'A'+i)
		}
	}
	if _, err := c.Client(nil).CurrentAPISession.DeleteCurrentAPISession(
		&current_api_session.DeleteCurrentAPISessionParams{}, s.Auth); err != nil {
		t.Fatal(err)
	}

	for i, e := range envs {
		eventually(t, fmt.Sprintf("replica %c refuses the ended session", 'A'+i), func() error {
			return refused(e, s)
		})
		after := cursors[e]
		wait := int64(5)
		ok, err := e.Client(nil).Router.ListEvents(&router.ListEventsParams{After: &after, Wait: &wait}, r.Auth)
		if err != nil {
			t.Fatal(err)
		}
		ev := removalOf(ok.Payload.Data, s.ID)
		if ev == nil || len(ev.Fingerprints) != 1 || ev.Fingerprints[0] != fingerprintOf(cert.Leaf) {
			t.Errorf("replica %c's event stream lacks the removal: %+v", 'A'+i, ok.Payload.Data)
		}
	}
}

// TestLeaseExpiryReachesRouters ends a session through its etcd lease,
// with no replica sweeping or deleting it: a router following another
// replica than the one the session lives on gets the removal, naming the
// session's certificate. The lease is revoked rather than waited out (the
// shortest session lease runs two minutes); etcd ends a lease whose TTL ran
// out with the same revocation, deleting every key attached to it in one
// revision.
func TestLeaseExpiryReachesRouters(t *testing.T) {
	cluster := etcdtest.Start(t, 1)
	envs := startReplicas(t, cluster, 2, nil)
	a, b := envs[0], envs[1]
	admin := a.Admin(t)
	a.CreateIdentity(t, admin, "edge1", "Router", "router-password")
	r := b.Login(t, "edge1", "router-password")
	start, err := b.Client(nil).Router.ListEvents(&router.ListEventsParams{}, r.Auth)
	if err != nil {
		t.Fatal(err)
	}

	s := a.Login(t, "admin", servertest.AdminPassword)
	cert := a.IssueCertificate(t, s)
	cli := cluster.Client(t)
	ctx := t.Context()
	rec, err := cli.Get(ctx, etcdPrefix(t)+"live/sessions/"+s.ID)
	if err != nil || len(rec.Kvs) != 1 || rec.Kvs[0].Lease == 0 {
		t.Fatalf("the session's record in etcd: %+v, %v", rec, err)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(rec.Kvs[0].Lease)); err != nil {
		t.Fatalf("end the session's lease: %v", err)
	}

	after, wait := *start.Payload.Meta.Cursor, int64(10)
	ok, err := b.Client(nil).Router.ListEvents(&router.ListEventsParams{After: &after, Wait: &wait}, r.Auth)
	if err != nil {
		t.Fatal(err)
	}
	ev := removalOf(ok.Payload.Data, s.ID)
	if ev == nil || len(ev.Fingerprints) != 1 || ev.Fingerprints[0] != fingerprintOf(cert.Leaf) {
		t.Fatalf("the router's events lack the lease's removal of %s with its certificate: %+v",
			s.ID, ok.Payload.Data)
	}
	eventually(t, "the replica the session lived on refuses it", func() error { return refused(a, s) })
}

// TestLeaseOutlastsFlushInterval: a replica that writes activity every two
// minutes gives a session's lease a slack of two intervals and the clock
// skew, more than the default minute, so that activity on it just before
// the stored expiry reaches etcd before the lease runs out.
func TestLeaseOutlastsFlushInterval(t *testing.T) {
	cluster := etcdtest.Start(t, 1)
	envs := startReplicas(t, cluster, 1, func(c *server.Config) {
		c.SessionTimeout = 30 * time.Minute
		c.Store.FlushInterval = 2 * time.Minute
	})
	s := envs[0].Admin(t)
	cli := cluster.Client(t)
	rec, err := cli.Get(t.Context(), etcdPrefix(t)+"live/sessions/"+s.ID)
	if err != nil || len(rec.Kvs) != 1 || rec.Kvs[0].Lease == 0 {
		t.Fatalf("the session's record in etcd: %+v, %v", rec, err)
	}
	ttl, err := cli.TimeToLive(t.Context(), clientv3.LeaseID(rec.Kvs[0].Lease))
	if err != nil {
		t.Fatal(err)
	}
	want := 30*time.Minute + 2*2*time.Minute + sessionpkg.DefaultClockSkew
	if got := time.Duration(ttl.GrantedTTL) * time.Second; got != want {
		t.Errorf("lease TTL %s, want %s", got, want)
	}
}

// TestLiveGaugesAcrossReplicas: sessions made on A and ended on B, with a
// certificate among them. Between counts each replica moves its gauges by
// its own changes only, which may leave them apart but never below zero;
// after a count of the store (which the servers make every
// metrics.LiveRefreshInterval, and the test makes at once) both report the
// cluster's figures.
func TestLiveGaugesAcrossReplicas(t *testing.T) {
	cluster := etcdtest.Start(t, 1)
	envs := startReplicas(t, cluster, 2, nil)
	a, b := envs[0], envs[1]
	var sessions []*servertest.Session
	for range 3 {
		sessions = append(sessions, a.Admin(t))
	}
	a.IssueCertificate(t, sessions[0])
	a.IssueCertificate(t, sessions[2])
	for _, s := range sessions[:2] {
		if _, err := b.Client(nil).CurrentAPISession.DeleteCurrentAPISession(
			&current_api_session.DeleteCurrentAPISessionParams{}, s.Auth); err != nil {
			t.Fatal(err)
		}
	}

	gauges := func(e *servertest.Env) (sessions, certs float64) {
		fams := scrape(t, e)
		return value(fams, "sessioncert_sessions_live"), value(fams, "sessioncert_certificates_live")
	}
	for i, e := range envs {
		if s, c := gauges(e); s < 0 || c < 0 {
			t.Errorf("replica %c before a count: %v sessions, %v certificates live", 'A'+i, s, c)
		}
	}
	for i, e := range envs {
		if err := e.Server.RefreshLiveGauges(t.Context()); err != nil {
			t.Fatalf("replica %c: %v", 'A'+i, err)
		}
		if s, c := gauges(e); s != 1 || c != 1 {
			t.Errorf("replica %c after a count: %v sessions, %v certificates live; want 1 and 1",
				'A'+i, s, c)
		}
	}
}

// TestEtcdOutOfSpace fills an etcd with a small space quota under a
// replica: clients get 503 SERVICE_UNAVAILABLE, as for any outage, but the
// operator is told at Error what to do, and the health check's store entry
// is unhealthy and says it too.
func TestEtcdOutOfSpace(t *testing.T) {
	cluster := etcdtest.StartWith(t, 1, etcdtest.Options{QuotaBackendBytes: 8 << 20})
	var logs syncBuffer
	e := servertest.Start(t, servertest.Options{
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Config: func(c *server.Config) {
			c.Store.Kind = "etcd"
			c.Store.EtcdEndpoints = cluster.Endpoints()
			c.Store.EtcdPrefix = etcdPrefix(t)
		},
	})
	s := e.Admin(t)
	_, csr := servertest.NewCSR(t)

	cli := cluster.Client(t)
	junk := strings.Repeat("x", 64<<10)
	for i := 0; ; i++ {
		_, err := cli.Put(t.Context(), fmt.Sprintf("/junk/%d", i), junk)
		if err != nil {
			break
		}
		if i == 10_000 {
			t.Fatal("etcd took 640 MiB of junk without running out of space")
		}
	}

	if status, _ := issueOutcome(e.Client(nil).CurrentAPISession, s, csr); status != 503 {
		t.Errorf("issuance out of space: %d, want 503", status)
	}
	st, _, env := rawCall(t, e, "POST", "/edge/client/v1/authenticate?method=password",
		"application/json", `{"username":"admin","password":"`+servertest.AdminPassword+`"}`, nil)
	if st != 503 || *env.Error.Code != "SERVICE_UNAVAILABLE" {
		t.Errorf("login out of space: %d %+v, want 503 SERVICE_UNAVAILABLE", st, env.Error)
	}

	_, err := e.Client(nil).Informational.ListHealthChecks(&informational.ListHealthChecksParams{})
	var down *informational.ListHealthChecksServiceUnavailable
	if !errors.As(err, &down) {
		t.Fatalf("health out of space: %v, want 503", err)
	}
	for _, ch := range down.Payload.Data.Checks {
		if *ch.ID == "store" && (*ch.Healthy || !strings.Contains(*ch.Detail, "--quota-backend-bytes")) {
			t.Errorf("store check out of space: healthy %v, %q", *ch.Healthy, *ch.Detail)
		}
	}

	var told bool
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec struct{ Level, Msg, Error string }
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Level != "ERROR" {
			continue
		}
		if rec.Msg == "etcd is out of space and refuses writes" &&
			strings.Contains(rec.Error, "defrag") && strings.Contains(rec.Error, "alarm disarm") {
			told = true
		}
	}
	if !told {
		t.Errorf("no Error line tells the operator what to do; the log:\n%s", logs.String())
	}

	// The operator does as told, and the service returns.
	ctx := t.Context()
	del, err := cli.Delete(ctx, "/junk/", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("delete the junk: %v", err)
	}
	if _, err := cli.Compact(ctx, del.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact: %v", err)
	}
	if _, err := cli.Defragment(ctx, cluster.Endpoints()[0]); err != nil {
		t.Fatalf("defragment: %v", err)
	}
	alarms, err := cli.AlarmList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alarms.Alarms {
		if _, err := cli.AlarmDisarm(ctx, (*clientv3.AlarmMember)(a)); err != nil {
			t.Fatalf("disarm: %v", err)
		}
	}
	eventually(t, "issuance after the operator freed space", func() error {
		if status, _ := issueOutcome(e.Client(nil).CurrentAPISession, s, csr); status != 201 {
			return fmt.Errorf("issuance answered %d", status)
		}
		return nil
	})
	eventually(t, "health after the operator freed space", func() error {
		_, err := e.Client(nil).Informational.ListHealthChecks(&informational.ListHealthChecksParams{})
		return err
	})
}

// outcomes counts the replies of the controllers that clients saw, below
// the SDK, so that a test sees the 503s the SDK retried as well as the
// ones it gave up on.
type outcomes struct {
	mu     sync.Mutex
	status map[int]int    // replies by status
	codes  map[string]int // error replies by "status code"
}

// record counts one reply.
func (o *outcomes) record(res *http.Response) {
	key := ""
	if res.StatusCode >= 400 {
		body, rerr := io.ReadAll(res.Body)
		_ = res.Body.Close()
		res.Body = io.NopCloser(bytes.NewReader(body))
		var env struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if rerr == nil {
			_ = json.Unmarshal(body, &env)
		}
		key = fmt.Sprintf("%d %s", res.StatusCode, env.Error.Code)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.status[res.StatusCode]++
	if key != "" {
		o.codes[key]++
	}
}

// counting is one client's transport, which counts its replies in o.
type counting struct {
	base http.RoundTripper
	o    *outcomes
}

func (c counting) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	c.o.record(res)
	return res, nil
}

// sdkWorker is one client driving issuance through the SDK, on a clock of
// its own that it moves on so that every call renews the certificate.
type sdkWorker struct {
	sdk   *sdk.SDK
	clock *servertest.Clock
	cur   sdk.Credential
}

// newSDKWorker returns a worker logged in as admin on e through o.
func newSDKWorker(t *testing.T, e *servertest.Env, o *outcomes) *sdkWorker {
	t.Helper()
	httpClient := e.NewHTTPClient(nil)
	httpClient.Transport = counting{base: httpClient.Transport, o: o}
	clock := &servertest.Clock{}
	clock.Set(time.Now())
	s, err := sdk.New(sdk.Config{
		Client:      e.Client(httpClient),
		Credentials: sdk.Password{Username: "admin", Password: servertest.AdminPassword},
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return &sdkWorker{sdk: s, clock: clock}
}

// issue has the SDK replace its certificate, as it does when a peer
// refused it, and returns the new credential. The clock moves past both
// the SDK's pause between forced renewals and its pause after a failed one,
// and stays within its session's idle timeout.
func (w *sdkWorker) issue(ctx context.Context) (sdk.Credential, error) {
	if w.cur.Certificate != nil {
		w.sdk.Invalidate(w.cur)
	}
	w.clock.Advance(11 * time.Second)
	c, err := w.sdk.Credential(ctx)
	if err == nil {
		w.cur = c
	}
	return c, err
}

// TestFaultsOneMemberDown stops the leader of a three-member etcd cluster
// during 1000 issuances through the SDK, spread over two replicas: every
// reply is a 201 or a 503 SERVICE_UNAVAILABLE, which the SDK retries;
// every certificate handed out is in the store afterwards. Once the member
// is back, it serves: with another member stopped, the cluster keeps its
// quorum only through it, and issuance goes on.
func TestFaultsOneMemberDown(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-member etcd cluster")
	}
	cluster := etcdtest.Start(t, 3)
	envs := startReplicas(t, cluster, 2, nil)
	o := &outcomes{status: map[int]int{}, codes: map[string]int{}}
	const workers = 8
	ws := make([]*sdkWorker, workers)
	for w := range ws {
		ws[w] = newSDKWorker(t, envs[w%2], o)
	}
	ctx := t.Context()

	var mu sync.Mutex
	created := map[string]string{} // certificate id -> session id
	var failed []error
	run := func(n int, midway func()) {
		var wg sync.WaitGroup
		next := make(chan int)
		for _, w := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range next {
					c, err := w.issue(ctx)
					mu.Lock()
					if err == nil {
						created[c.CertificateID] = c.SessionID
					} else {
						failed = append(failed, err)
					}
					mu.Unlock()
				}
			}()
		}
		for i := range n {
			if i == n/5 && midway != nil {
				midway()
			}
			next <- i
		}
		close(next)
		wg.Wait()
	}

	stopped := -1
	run(1000, func() {
		stopped = cluster.Leader()
		cluster.Stop(stopped)
	})
	t.Logf("replies %v, errors %v; %d certificates, %d issuances failed after the SDK's retries",
		o.status, o.codes, len(created), len(failed))
	for key, n := range o.codes {
		if key != "503 SERVICE_UNAVAILABLE" {
			t.Errorf("%d replies %q; only 503 SERVICE_UNAVAILABLE may fail", n, key)
		}
	}
	for _, err := range failed {
		if ae, ok := sdk.AsAPIError(err); !ok || ae.Status != 503 || ae.Code != "SERVICE_UNAVAILABLE" {
			t.Errorf("an issuance failed with %v, want a 503 SERVICE_UNAVAILABLE", err)
		}
	}
	if len(created) < 900 {
		t.Errorf("only %d of 1000 issuances succeeded with one member of three down", len(created))
	}
	st := envs[1].Server.Store()
	for id, sessionID := range created {
		if _, err := st.GetCertificate(ctx, sessionID, id); err != nil {
			t.Errorf("certificate %s handed out by the SDK is not in the store: %v", id, err)
		}
	}

	// The member comes back; then another goes, and the quorum is the
	// restarted member and the last one. Once that quorum has a leader,
	// every issuance succeeds.
	cluster.Restart(stopped)
	s := envs[0].Admin(t)
	_, csr := servertest.NewCSR(t)
	other := (stopped + 1) % 3
	cluster.Stop(other)
	defer cluster.Restart(other)
	for deadline := time.Now().Add(30 * time.Second); ; {
		status, _ := issueOutcome(envs[0].Client(nil).CurrentAPISession, s, csr)
		if status == 201 {
			break
		}
		if status != 503 || time.Now().After(deadline) {
			t.Fatalf("issuance with the restarted member in the quorum: %d", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := len(created)
	failed = nil
	run(40, nil)
	if got := len(created) - before; got < 40 || len(failed) > 0 {
		t.Errorf("with the restarted member in the quorum: %d of 40 issuances succeeded (%v)",
			got, failed)
	}
}

// TestFaultsQuorumLost stops two members of three: requests get clear
// 503s, nothing is corrupted, and service returns with the members.
func TestFaultsQuorumLost(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-member etcd cluster")
	}
	cluster := etcdtest.Start(t, 3)
	envs := startReplicas(t, cluster, 1, nil)
	e := envs[0]
	s := e.Admin(t)
	before := e.IssueCertificate(t, s)
	_, csr := servertest.NewCSR(t)

	cluster.Stop(1)
	cluster.Stop(2)
	status, _ := issueOutcome(e.Client(nil).CurrentAPISession, s, csr)
	if status != 503 {
		t.Errorf("issuance without quorum: %d, want 503", status)
	}
	st, _, env := rawCall(t, e, "POST", "/edge/client/v1/authenticate?method=password", "application/json",
		`{"username":"admin","password":"`+servertest.AdminPassword+`"}`, nil)
	if st != 503 || *env.Error.Code != "SERVICE_UNAVAILABLE" {
		t.Errorf("login without quorum: %d %+v, want 503 SERVICE_UNAVAILABLE", st, env.Error)
	}

	cluster.Restart(1)
	cluster.Restart(2)
	eventually(t, "service returns with quorum", func() error {
		if status, _ := issueOutcome(e.Client(nil).CurrentAPISession, s, csr); status != 201 {
			return fmt.Errorf("issuance answered %d", status)
		}
		return nil
	})
	list := listCerts(t, e, session{token: s.Token, id: s.ID, auth: s.Auth})
	found := false
	for _, c := range list {
		found = found || *c.ID == before.ID
	}
	if !found {
		t.Error("the certificate issued before the outage is gone")
	}
}

// issueOutcome sends one issuance and returns its status: 201, or the
// status of the error reply, or 0 when no reply came.
func issueOutcome(c current_api_session.ClientService, s *servertest.Session, csr string) (int, string) {
	res, err := c.CreateCurrentAPISessionCertificate(
		&current_api_session.CreateCurrentAPISessionCertificateParams{
			SessionCertificate: &models.CurrentAPISessionCertificateCreate{Csr: &csr},
		}, s.Auth)
	if err == nil {
		return 201, *res.Payload.Data.ID
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		return coded.Code(), ""
	}
	return 0, ""
}

// TestFaultsControllerKilled runs a controller as a process of its own
// beside two in the test, and kills it with SIGKILL while all three issue
// certificates: it flushes nothing and closes nothing. The other two carry
// on without a failed request, serving the sessions the killed one created
// as well as their own, and see a logout of such a session at once.
func TestFaultsControllerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs sessioncert-server")
	}
	cluster := etcdtest.Start(t, 1)
	envs := startReplicas(t, cluster, 2, nil)
	caCert, caKey := sharedCA(envs[0])
	args := []string{"--store", "etcd", "--etcd-prefix", etcdPrefix(t),
		"--ca-cert", caCert, "--ca-key", caKey,
		"--cert-rate-burst", "0", "--max-certs-per-session", "0"}
	for _, ep := range cluster.Endpoints() {
		args = append(args, "--etcd-endpoints", ep)
	}
	proc := servertest.StartProcess(t, "", args...)
	victim := proc.Env()
	all := []*servertest.Env{envs[0], envs[1], victim}

	// Sessions made on the controller that will die, and on a survivor.
	sessions := []*servertest.Session{victim.Admin(t), envs[0].Admin(t)}
	_, csr := servertest.NewCSR(t)

	var (
		mu         sync.Mutex
		killed     bool
		survivors  = map[int]int{} // statuses of the survivors' replies
		afterKill  int             // survivors' replies after the kill
		victimDone int             // the killed one's replies before the kill
	)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				target := all[(w+i)%len(all)]
				status, _ := issueOutcome(target.Client(nil).CurrentAPISession, sessions[i%2], csr)
				mu.Lock()
				switch {
				case target != victim:
					survivors[status]++
					if killed {
						afterKill++
					}
				case status == 201:
					victimDone++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range 300 {
		if i == 100 {
			proc.Signal(t, syscall.SIGKILL)
			waitCtx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			_ = proc.Wait(waitCtx)
			cancel()
			mu.Lock()
			killed = true
			mu.Unlock()
		}
		next <- i
	}
	close(next)
	wg.Wait()

	t.Logf("survivors' replies %v (%d after the kill); the killed one issued %d",
		survivors, afterKill, victimDone)
	for status, n := range survivors {
		if status != 201 {
			t.Errorf("%d issuances on a surviving replica answered %d", n, status)
		}
	}
	if afterKill == 0 || victimDone == 0 {
		t.Errorf("the traffic did not straddle the kill: %d survivors' replies after it, "+
			"%d issuances on the killed one before it", afterKill, victimDone)
	}

	// The session the killed controller made ends on one survivor and is
	// refused by the other.
	if _, err := envs[1].Client(nil).CurrentAPISession.DeleteCurrentAPISession(
		&current_api_session.DeleteCurrentAPISessionParams{}, sessions[0].Auth); err != nil {
		t.Fatalf("logout of the killed controller's session on a survivor: %v", err)
	}
	eventually(t, "the other survivor refuses the ended session", func() error {
		return refused(envs[0], sessions[0])
	})
}
