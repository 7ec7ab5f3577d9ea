// Package etcdtest runs a real etcd cluster inside a test process, so that
// the etcd backend is tested against etcd itself rather than a fake: its
// transactions, leases, watches and compaction.
//
// Members listen on 127.0.0.1 on free ports, keep their data in the test's
// temporary directory, log errors only, and use short raft ticks so that a
// cluster elects a leader within a fraction of a second and the shortest
// lease etcd grants is one second.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Raft timing of the test members. A heartbeat every 10 ms and an election
// after 100 ms make startup fast; etcd's minimum lease TTL is 1.5 election
// timeouts rounded up to whole seconds, so leases of one second work.
const (
	tickMs     = 10
	electionMs = 100
)

// startTimeout bounds how long Start and Restart wait for members to be
// ready; generous, because -race slows everything on a small machine.
const startTimeout = 30 * time.Second

// Cluster is an etcd cluster running in the test process. Its methods may
// be called from any goroutine; the cluster stops when the test that
// started it ends.
type Cluster struct {
	t       testing.TB
	dir     string
	opts    Options
	initial string // the initial-cluster flag: name=peerURL,...

	mu      sync.Mutex
	members []*member
}

type member struct {
	name       string
	peer, user url.URL
	etcd       *embed.Etcd // nil while stopped
	log        *testLog    // of the running etcd
}

// Options change the members' configuration from the defaults.
type Options struct {
	// QuotaBackendBytes is etcd's --quota-backend-bytes: a write that would
	// take the database past it is refused, and the NOSPACE alarm raised.
	// Zero means etcd's default.
	QuotaBackendBytes int64
}

// Start starts a cluster of members (1 or 3 make sense) and waits until it
// has a leader. It fails t if the cluster does not start.
func Start(t testing.TB, members int) *Cluster {
	t.Helper()
	return StartWith(t, members, Options{})
}

// StartWith starts a cluster as Start does, configured by o.
func StartWith(t testing.TB, members int, o Options) *Cluster {
	t.Helper()
	if members < 1 {
		t.Fatalf("etcdtest: a cluster of %d members", members)
	}
	c := &Cluster{t: t, dir: t.TempDir(), opts: o}
	t.Cleanup(c.stopAll)

	// Free ports are found by listening and letting go, so another
	// process can take one before etcd binds it; start again on new ports
	// when that happens.
	var err error
	for range 3 {
		if err = c.start(members); err == nil {
			return c
		}
		c.stopAll()
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("etcdtest: start %d members: %v", members, err)
	return nil
}

// start creates the members on fresh ports and starts them together.
func (c *Cluster) start(n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members = make([]*member, n)
	initial := make([]string, n)
	for i := range c.members {
		peer, err := freeURL()
		if err != nil {
			return err
		}
		user, err := freeURL()
		if err != nil {
			return err
		}
		m := &member{name: fmt.Sprintf("m%d", i), peer: peer, user: user}
		c.members[i] = m
		initial[i] = m.name + "=" + peer.String()
	}
	c.initial = strings.Join(initial, ",")

	// A member of a new cluster is ready only once the others are up, so
	// all are launched before any is waited for.
	for _, m := range c.members {
		e, err := embed.StartEtcd(c.config(m))
		if err != nil {
			return fmt.Errorf("member %s: %w", m.name, err)
		}
		m.etcd = e
	}
	for _, m := range c.members {
		if err := ready(m.etcd); err != nil {
			return fmt.Errorf("member %s: %w", m.name, err)
		}
	}
	return nil
}

// config is the embedded etcd configuration of a member.
func (c *Cluster) config(m *member) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = filepath.Join(c.dir, m.name)
	cfg.ListenPeerUrls = []url.URL{m.peer}
	cfg.AdvertisePeerUrls = []url.URL{m.peer}
	cfg.ListenClientUrls = []url.URL{m.user}
	cfg.AdvertiseClientUrls = []url.URL{m.user}
	cfg.InitialCluster = c.initial
	cfg.InitialClusterToken = fmt.Sprintf("etcdtest-%p", c)
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.TickMs = tickMs
	cfg.ElectionMs = electionMs
	cfg.EnableGRPCGateway = false
	cfg.QuotaBackendBytes = c.opts.QuotaBackendBytes

	// Errors go to the test's log, shown when it fails or with -v; the
	// errors etcd logs while it is being stopped on purpose are dropped.
	m.log = &testLog{t: c.t, name: m.name}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.StacktraceKey = ""
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(m.log),
		zapcore.ErrorLevel)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(core))
	return cfg
}

// testLog writes etcd's log lines to the test's log until it is muted.
type testLog struct {
	t    testing.TB
	name string

	mu    sync.Mutex
	muted bool
}

// Write logs one line. testing.TB may not be used once the test is over,
// and etcd goroutines may still log then, so muting is final.
func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.muted {
		l.t.Logf("etcd %s: %s", l.name, strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// mute drops every later line.
func (l *testLog) mute() {
	l.mu.Lock()
	l.muted = true
	l.mu.Unlock()
}

// ready waits until e has joined its cluster.
func ready(e *embed.Etcd) error {
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		return err
	case <-time.After(startTimeout):
		return errors.New("not ready after " + startTimeout.String())
	}
}

// freeURL returns an http URL on 127.0.0.1 with a port nobody listens on
// right now.
func freeURL() (url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return url.URL{}, fmt.Errorf("find a free port: %w", err)
	}
	return url.URL{Scheme: "http", Host: addr}, nil
}

// Endpoints returns the client URLs of all members, stopped ones included.
func (c *Cluster) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.user.String()
	}
	return out
}

// Client returns a new client of all members, closed when t ends. It fails
// t if the client cannot be made.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcdtest: client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// Leader returns the index of the member that leads the cluster, waiting
// until the running members agree on one. It fails the test when they do
// not within the start timeout.
func (c *Cluster) Leader() int {
	c.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		if i, ok := c.leader(); ok {
			return i
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("etcdtest: no leader after %s", startTimeout)
		}
		time.Sleep(tickMs * time.Millisecond)
	}
}

// leader returns the leader's index when every running member names the
// same running member as leader.
func (c *Cluster) leader() (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lead uint64
	for _, m := range c.members {
		if m.etcd == nil {
			continue
		}
		l := m.etcd.Server.Lead()
		if l == 0 || (lead != 0 && l != lead) {
			return 0, false
		}
		lead = l
	}
	for i, m := range c.members {
		if m.etcd != nil && uint64(m.etcd.Server.MemberID()) == lead {
			return i, true
		}
	}
	return 0, false
}

// Stop stops member i, as a crash would, keeping its data.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members[i].stop()
}

// stop closes the member's etcd, if it runs.
func (m *member) stop() {
	if m.etcd == nil {
		return
	}
	m.log.mute()
	m.etcd.Close()
	m.etcd = nil
}

// Restart starts the stopped member i again on its data and ports, and
// waits until it has rejoined the cluster; it fails the test otherwise.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[i]
	if m.etcd != nil {
		return
	}
	e, err := embed.StartEtcd(c.config(m))
	if err == nil {
		m.etcd = e
		err = ready(e)
	}
	if err != nil {
		c.t.Fatalf("etcdtest: restart member %s: %v", m.name, err)
	}
}

// stopAll stops every member.
func (c *Cluster) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		if m != nil {
			m.stop()
		}
	}
}
