package server_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/client/router"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
	"github.com/sessioncert/sessioncert/pkg/store/etcd/etcdtest"
)

// startReplicas starts n servers on one etcd cluster, sharing the CA of the
// first, as a cluster deployment does.
func startReplicas(t *testing.T, cluster *etcdtest.Cluster, n int, clock *servertest.Clock) []*servertest.Env {
	t.Helper()
	prefix := "/" + t.Name() + "/"
	onEtcd := func(c *server.Config) {
		c.Store.Kind = "etcd"
		c.Store.EtcdEndpoints = cluster.Endpoints()
		c.Store.EtcdPrefix = prefix
		// The fault tests send many requests on one session.
		c.Certs.RateBurst = 0
		c.Certs.MaxCertsPerSession = 0
	}
	first := servertest.Start(t, servertest.Options{Config: onEtcd, Clock: clock})
	envs := []*servertest.Env{first}
	pki := filepath.Join(first.DataDir, "pki")
	for range n - 1 {
		envs = append(envs, servertest.Start(t, servertest.Options{Clock: clock, Config: func(c *server.Config) {
			onEtcd(c)
			c.Certs.CACert = filepath.Join(pki, "ca-intermediate.pem")
			c.Certs.CAKey = filepath.Join(pki, "ca-intermediate.key")
		}}))
	}
	return envs
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

// TestReplicasShareSessions: login on one replica, a certificate on
// another, logout on a third; every replica refuses the token, and a router
// following events from any replica sees the removal.
func TestReplicasShareSessions(t *testing.T) {
	cluster := etcdtest.Start(t, 1)
	envs := startReplicas(t, cluster, 3, nil)
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
	if _, err := c.Client(nil).CurrentAPISession.DeleteCurrentAPISession(
		&current_api_session.DeleteCurrentAPISessionParams{}, s.Auth); err != nil {
		t.Fatal(err)
	}

	for i, e := range envs {
		eventually(t, "replica "+string(rune('A'+i))+" refuses the ended session", func() error {
			_, err := e.Client(nil).CurrentAPISession.GetCurrentAPISession(
				&current_api_session.GetCurrentAPISessionParams{}, s.Auth)
			var unauth *current_api_session.GetCurrentAPISessionUnauthorized
			if errors.As(err, &unauth) {
				return nil
			}
			return errors.New("session still accepted")
		})
		after := cursors[e]
		wait := int64(5)
		ok, err := e.Client(nil).Router.ListEvents(&router.ListEventsParams{After: &after, Wait: &wait}, r.Auth)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range ok.Payload.Data {
			if *ev.APISessionID == s.ID && *ev.Type == "apiSessionRemoved" && len(ev.Fingerprints) == 1 &&
				ev.Fingerprints[0] == fingerprintOf(cert.Leaf) {
				found = true
			}
		}
		if !found {
			t.Errorf("replica %c's event stream lacks the removal: %+v", 'A'+i, ok.Payload.Data)
		}
	}
}

// issueOutcome sends one issuance and returns its status: 201, or the
// status of the error reply, or 0 when no reply came.
func issueOutcome(e *servertest.Env, s *servertest.Session, csr string) (int, string) {
	res, err := e.Client(nil).CurrentAPISession.CreateCurrentAPISessionCertificate(
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

// TestFaultsOneMemberDown stops one member of a three-member etcd cluster
// during 1000 issuances spread over two replicas: every issuance succeeds
// or gets a clear 503, and every 201 is in the store afterwards.
func TestFaultsOneMemberDown(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-member etcd cluster")
	}
	cluster := etcdtest.Start(t, 3)
	envs := startReplicas(t, cluster, 2, nil)
	s := envs[0].Admin(t)
	_, csr := servertest.NewCSR(t)

	var mu sync.Mutex
	created := map[string]bool{}
	statuses := map[int]int{}
	var wg sync.WaitGroup
	next := make(chan int)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				status, id := issueOutcome(envs[w%2], s, csr)
				mu.Lock()
				statuses[status]++
				if status == 201 {
					created[id] = true
				}
				mu.Unlock()
			}
		}()
	}
	for i := range 1000 {
		if i == 200 {
			cluster.Stop(0)
		}
		next <- i
	}
	close(next)
	wg.Wait()
	t.Logf("statuses: %v", statuses)
	for status, n := range statuses {
		if status != 201 && status != 503 {
			t.Errorf("%d issuances answered %d; only 201 and 503 are allowed", n, status)
		}
	}
	if statuses[201] < 900 {
		t.Errorf("only %d of 1000 issuances succeeded with one member of three down", statuses[201])
	}
	ctx := context.Background()
	st := envs[1].Server.Store()
	for id := range created {
		if _, err := st.GetCertificate(ctx, s.ID, id); err != nil {
			t.Errorf("certificate %s answered 201 is not in the store: %v", id, err)
		}
	}
	cluster.Restart(0)
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
	status, _ := issueOutcome(e, s, csr)
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
		if status, _ := issueOutcome(e, s, csr); status != 201 {
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

// TestFaultsControllerKilled stops one of two replicas during issuance:
// the other carries on with the same sessions.
func TestFaultsControllerKilled(t *testing.T) {
	cluster := etcdtest.Start(t, 1)
	envs := startReplicas(t, cluster, 2, nil)
	s := envs[0].Admin(t)
	_, csr := servertest.NewCSR(t)
	for i := range 20 {
		if i == 10 {
			envs[0].Stop()
		}
		if status, _ := issueOutcome(envs[1], s, csr); status != 201 {
			t.Fatalf("issuance %d on the surviving replica: %d", i, status)
		}
	}
}
