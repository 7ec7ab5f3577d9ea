package etcd_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/etcd"
	"github.com/sessioncert/sessioncert/pkg/store/etcd/etcdtest"
)

// faults sits between a client and etcd, at the gRPC layer, and lets a
// test see what the client sends and lose what etcd answers: the failures
// a network and a busy cluster produce, at the moment a test chooses. The
// zero value passes everything through.
type faults struct {
	mu sync.Mutex

	// afterTxn, when set, sees each transaction after etcd answered it and
	// may replace the answer with an error, as a reply lost on the way
	// back would be.
	afterTxn func(req *pb.TxnRequest) error

	// beforeTxn, when set, runs before each transaction is sent.
	beforeTxn func(req *pb.TxnRequest)

	// failKeepAlives is how many lease renewal replies to lose next.
	failKeepAlives int

	// stalled, while not nil, holds every watch reply until it is closed.
	stalled chan struct{}

	keptAlive []int64 // leases whose renewal was sent
	revoked   []int64 // leases whose revocation was sent
	puts      int     // PUT events the client's watches received
	deletes   int     // DELETE events the client's watches received
}

// client returns a client of cluster that goes through f.
func (f *faults) client(t *testing.T, cluster *etcdtest.Cluster) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cluster.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{
			grpc.WithChainUnaryInterceptor(f.unary),
			grpc.WithChainStreamInterceptor(f.stream),
		},
	})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func (f *faults) unary(
	ctx context.Context,
	method string,
	req, reply any,
	cc *grpc.ClientConn,
	invoke grpc.UnaryInvoker,
	opts ...grpc.CallOption,
) error {
	f.mu.Lock()
	before, after := f.beforeTxn, f.afterTxn
	if r, ok := req.(*pb.LeaseRevokeRequest); ok {
		f.revoked = append(f.revoked, r.ID)
	}
	f.mu.Unlock()

	txn, isTxn := req.(*pb.TxnRequest)
	if isTxn && before != nil {
		before(txn)
	}
	err := invoke(ctx, method, req, reply, cc, opts...)
	if isTxn && after != nil && err == nil {
		err = after(txn)
	}
	return err
}

func (f *faults) stream(
	ctx context.Context,
	desc *grpc.StreamDesc,
	cc *grpc.ClientConn,
	method string,
	streamer grpc.Streamer,
	opts ...grpc.CallOption,
) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, err
	}
	return &faultyStream{ClientStream: s, f: f}, nil
}

// faultyStream applies the faults to the messages of one stream.
type faultyStream struct {
	grpc.ClientStream
	f *faults
}

func (s *faultyStream) SendMsg(m any) error {
	if r, ok := m.(*pb.LeaseKeepAliveRequest); ok {
		s.f.mu.Lock()
		s.f.keptAlive = append(s.f.keptAlive, r.ID)
		s.f.mu.Unlock()
	}
	return s.ClientStream.SendMsg(m)
}

func (s *faultyStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	f := s.f
	switch r := m.(type) {
	case *pb.LeaseKeepAliveResponse:
		f.mu.Lock()
		lose := err == nil && f.failKeepAlives > 0
		if lose {
			f.failKeepAlives--
		}
		f.mu.Unlock()
		if lose {
			return status.Error(codes.Unavailable, "injected: renewal reply lost")
		}
	case *pb.WatchResponse:
		f.mu.Lock()
		for _, e := range r.Events {
			if e.Type == mvccpb.PUT {
				f.puts++
			} else {
				f.deletes++
			}
		}
		stalled := f.stalled
		f.mu.Unlock()
		if stalled != nil {
			<-stalled
		}
	}
	return err
}

// stall holds every watch reply until the returned function is called.
func (f *faults) stall() (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.stalled = ch
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.stalled = nil
			f.mu.Unlock()
			close(ch)
		})
	}
}

// createsSession reports whether req writes a session record under prefix.
func createsSession(req *pb.TxnRequest, prefix string) bool {
	for _, op := range req.Success {
		if put := op.GetRequestPut(); put != nil &&
			strings.HasPrefix(string(put.Key), prefix+"live/sessions/") {
			return true
		}
	}
	return false
}

// sessionLease returns the lease of the stored session id under prefix.
func sessionLease(t *testing.T, cli *clientv3.Client, prefix, id string) int64 {
	t.Helper()
	resp, err := cli.Get(t.Context(), prefix+"live/sessions/"+id)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("read the record of session %s: %d found, %v", id, len(resp.Kvs), err)
	}
	return resp.Kvs[0].Lease
}

// TestTouchRetryRenewsLease loses the reply to a lease renewal after the
// touch's write committed, as a timeout would: the touch fails, the
// registry queues it again, and the retry, which finds the record already
// moved, must still renew the lease. Otherwise the session would vanish
// with its lease before its stored ExpiresAt.
func TestTouchRetryRenewsLease(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	var f faults
	prefix := freshPrefix()
	fx := newFixture(t, f.client(t, cluster), etcd.Options{Prefix: prefix})
	sess, _ := fx.session(time.Hour, 0)
	lease := sessionLease(t, cluster.Client(t), prefix, sess.ID)
	ctx := t.Context()

	now := time.Now().UTC()
	touch := []store.Touch{{APISessionID: sess.ID, LastActivityAt: now, ExpiresAt: now.Add(time.Hour)}}
	f.mu.Lock()
	f.failKeepAlives = 1
	f.mu.Unlock()
	if err := fx.s.TouchAPISessions(ctx, touch); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("touch whose renewal reply was lost: %v, want ErrUnavailable", err)
	}
	got, err := fx.s.GetAPISession(ctx, sess.ID)
	if err != nil || !got.ExpiresAt.Equal(touch[0].ExpiresAt) {
		t.Fatalf("the touch's write did not commit: %+v, %v", got, err)
	}

	f.mu.Lock()
	f.keptAlive = nil
	f.mu.Unlock()
	if err := fx.s.TouchAPISessions(ctx, touch); err != nil {
		t.Fatalf("retried touch: %v", err)
	}
	f.mu.Lock()
	renewed := slices.Contains(f.keptAlive, lease)
	f.mu.Unlock()
	if !renewed {
		t.Errorf("the retried touch did not renew lease %x of session %s", lease, sess.ID)
	}
}

// TestWatchSeesRemovalsOnly checks what reaches a replica's watch: the
// removals, with their fingerprints, and none of the creations and activity
// writes, which are most of etcd's traffic; and that a watch held up does
// not hold up followers' polls after activity, only after removals, which
// they must see.
func TestWatchSeesRemovalsOnly(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	var f faults
	fx := newFixture(t, f.client(t, cluster), etcd.Options{RequestTimeout: time.Second})
	ctx := t.Context()
	cursor, err := fx.s.EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}

	sess, fps := fx.session(time.Hour, 2)
	release := f.stall()
	defer release()
	for range 5 {
		now := time.Now().UTC()
		err := fx.s.TouchAPISessions(ctx, []store.Touch{
			{APISessionID: sess.ID, LastActivityAt: now, ExpiresAt: now.Add(time.Hour)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	fx.session(time.Hour, 1)
	if evs, err := fx.s.Events(ctx, cursor, 100); err != nil || len(evs) != 0 {
		t.Fatalf("poll after activity, with the watch held up: %d events, %v; want none, at once",
			len(evs), err)
	}
	release()

	ev, err := fx.s.DeleteAPISession(ctx, sess.ID, store.CauseLogout, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := nextEvents(t, fx.s, cursor)
	if len(got) != 1 {
		t.Fatalf("%d events, want the removal of %s", len(got), sess.ID)
	}
	sameEvent(t, "removal seen through the watch", got[0], *ev)
	if len(got[0].Fingerprints) != len(fps) {
		t.Errorf("event names %d fingerprints, want %d", len(got[0].Fingerprints), len(fps))
	}
	f.mu.Lock()
	puts, deletes := f.puts, f.deletes
	f.mu.Unlock()
	if puts != 0 || deletes == 0 {
		t.Errorf("the watch received %d puts and %d deletions, want no puts", puts, deletes)
	}
}

// TestAmbiguousCreateKeepsSession loses the reply to a session's creation
// after etcd committed it. The store cannot know it committed, so it must
// not revoke the lease: that would remove a session that exists and record
// a removal no one made.
func TestAmbiguousCreateKeepsSession(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	var f faults
	prefix := freshPrefix()
	fx := newFixture(t, f.client(t, cluster), etcd.Options{Prefix: prefix})
	ctx := t.Context()
	cursor, err := fx.s.EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}

	lose := true
	f.mu.Lock()
	f.afterTxn = func(req *pb.TxnRequest) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if lose && createsSession(req, prefix) {
			lose = false
			return status.Error(codes.Unavailable, "injected: reply lost")
		}
		return nil
	}
	f.mu.Unlock()
	sess := &store.APISession{ID: "ambiguous", IdentityID: fx.identity.ID, Timeout: time.Hour,
		ExpiresAt: time.Now().Add(time.Hour)}
	if err := fx.s.CreateAPISession(ctx, sess, nil); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("CreateAPISession with its reply lost: %v, want ErrUnavailable", err)
	}
	lease := sessionLease(t, cluster.Client(t), prefix, sess.ID)

	// A refused creation revokes its lease through the same queue, after
	// the first one's would have been.
	if err := fx.s.CreateAPISession(ctx, sess, nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateAPISession of the same id: %v, want a conflict", err)
	}
	deadline := time.Now().Add(patience)
	for {
		f.mu.Lock()
		n := len(f.revoked)
		revokedFirst := slices.Contains(f.revoked, lease)
		f.mu.Unlock()
		if revokedFirst {
			t.Fatalf("the lease of the session whose creation was ambiguous was revoked")
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refused creation's lease was never revoked")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := fx.s.GetAPISession(ctx, sess.ID); err != nil {
		t.Errorf("the session that was created: %v", err)
	}
	if evs, err := fx.s.Events(ctx, cursor, 100); err != nil || len(evs) != 0 {
		t.Errorf("events after the ambiguous creation: %+v, %v; want none", evs, err)
	}
}

// TestListRetriesCompactedRevision compacts etcd between the two reads of
// a list: the list reads again instead of failing.
func TestListRetriesCompactedRevision(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	var f faults
	plain := cluster.Client(t)
	fx := newFixture(t, f.client(t, cluster), etcd.Options{})
	ctx := t.Context()
	if err := fx.s.CreateIdentity(ctx, &store.Identity{ID: "bob-id", Name: "bob"}); err != nil {
		t.Fatal(err)
	}

	compacted := false
	f.mu.Lock()
	f.beforeTxn = func(req *pb.TxnRequest) {
		for _, op := range req.Success {
			r := op.GetRequestRange()
			if r == nil || r.Revision == 0 || compacted {
				continue
			}
			compacted = true
			put, err := plain.Put(ctx, "/unrelated", "")
			if err == nil {
				_, err = plain.Compact(ctx, put.Header.Revision)
			}
			if err != nil {
				t.Errorf("compact: %v", err)
			}
		}
	}
	f.mu.Unlock()

	got, total, err := fx.s.ListIdentities(ctx, store.Page{Limit: 10})
	if err != nil {
		t.Fatalf("ListIdentities across a compaction: %v", err)
	}
	if !compacted || total != 2 || len(got) != 2 {
		t.Errorf("compacted %v; listed %d of %d, want 2 of 2", compacted, len(got), total)
	}
}

// TestReplayBounds checks the two limits on replaying etcd's history for a
// cursor from before a Store opened: a cursor further back than
// ReplayRevisions is refused without reading the history, and followers
// that ask together share one replay.
func TestReplayBounds(t *testing.T) {
	t.Parallel()
	cluster := etcdtest.Start(t, 1)
	plain := cluster.Client(t)
	prefix := freshPrefix()
	ctx := t.Context()

	early := newFixture(t, plain, etcd.Options{Prefix: prefix})
	old, err := early.s.EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var made []store.Event
	for range 3 {
		sess, _ := early.session(time.Hour, 0)
		ev, err := early.s.DeleteAPISession(ctx, sess.ID, store.CauseLogout, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, *ev)
	}
	// Writes that are no events, as activity is, between the cursor and
	// the Stores opened below.
	for range 50 {
		if _, err := plain.Put(ctx, prefix+"unrelated", ""); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("cursor too far back", func(t *testing.T) {
		s := mustOpen(t, etcd.Options{Client: plain, Prefix: prefix, ReplayRevisions: 20})
		if _, err := s.Events(ctx, old, 100); !errors.Is(err, store.ErrCursorExpired) {
			t.Errorf("Events(%d) more than 20 revisions before Open: %v, want ErrCursorExpired",
				old, err)
		}
		if n := etcd.Replays(s); n != 0 {
			t.Errorf("%d replays run for a cursor refused at once", n)
		}
	})

	t.Run("followers share a replay", func(t *testing.T) {
		var f faults
		s := mustOpen(t, etcd.Options{Client: f.client(t, cluster), Prefix: prefix})
		// Hold the watch replies, so that every follower arrives while the
		// first replay is still reading.
		release := f.stall()
		const followers = 8
		results := make(chan []store.Event, followers)
		errs := make(chan error, followers)
		for range followers {
			go func() {
				evs, err := s.Events(ctx, old, 100)
				results <- evs
				errs <- err
			}()
		}
		time.Sleep(100 * time.Millisecond)
		release()
		for range followers {
			evs, err := <-results, <-errs
			if err != nil {
				t.Fatalf("Events(%d): %v", old, err)
			}
			if len(evs) != len(made) {
				t.Fatalf("Events(%d) = %d events, want %d", old, len(evs), len(made))
			}
			for i := range made {
				sameEvent(t, "replayed event", evs[i], made[i])
			}
		}
		if n := etcd.Replays(s); n != 1 {
			t.Errorf("%d followers of one cursor ran %d replays, want 1", followers, n)
		}
	})
}
