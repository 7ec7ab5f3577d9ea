package etcd_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/etcd"
	"github.com/sessioncert/sessioncert/pkg/store/etcd/etcdtest"
)

// BenchmarkCreateCertificate measures durable certificate inserts into a
// real single-member etcd with fsync, as the request path makes them: with
// a cap of 10 live certificates per session. Each insert is a read and a
// transaction that compares the session's certificates, so writers that
// share a session retry. "serial" is one writer; in "parallel-N" N writers
// per core share etcd's raft batches. In "shared" 8 consecutive
// certificates go to one session (as the bolt benchmark does), so that
// parallel writers collide on it; in "spread" each certificate goes to a
// session of its own, as independent clients would.
func BenchmarkCreateCertificate(b *testing.B) {
	chain := strings.Repeat("-----BEGIN CERTIFICATE-----\n"+strings.Repeat("A", 64)+"\n", 12)
	cluster := etcdtest.Start(b, 1)
	cli := cluster.Client(b)

	cases := []struct {
		name        string
		parallelism int // writers per GOMAXPROCS; 0 runs one writer
		perSession  int // consecutive certificates that share a session
	}{
		{"serial", 0, 8},
		{"parallel-8/shared", 8, 8},
		{"parallel-8/spread", 8, 1},
		{"parallel-32/spread", 32, 1},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			s, err := etcd.Open(b.Context(), etcd.Options{Client: cli, Prefix: freshPrefix()})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			ctx := b.Context()
			if err := s.CreateIdentity(ctx, &store.Identity{ID: "i", Name: "i"}); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			sessionID := func(n int64) string {
				return fmt.Sprintf("session-%d", n/int64(bc.perSession))
			}

			// The sessions exist before the clock starts.
			var wg sync.WaitGroup
			sessions := int64(b.N/bc.perSession + 1)
			var next atomic.Int64
			for range 16 {
				wg.Go(func() {
					for k := next.Add(1) - 1; k < sessions; k = next.Add(1) - 1 {
						sid := sessionID(k * int64(bc.perSession))
						sess := &store.APISession{
							ID: sid, IdentityID: "i", Timeout: time.Hour,
							ExpiresAt: now.Add(time.Hour), TokenHash: sha256.Sum256([]byte(sid)),
						}
						if err := s.CreateAPISession(ctx, sess, nil); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()

			var seq atomic.Int64
			create := func() {
				n := seq.Add(1) - 1
				sum := sha256.Sum256(fmt.Append(nil, "certificate-", n))
				c := &store.Certificate{
					ID:           fmt.Sprintf("certificate-%d", n),
					APISessionID: sessionID(n),
					IdentityID:   "i",
					Fingerprint:  hex.EncodeToString(sum[:20]),
					Subject:      "CN=i",
					ChainPEM:     chain,
					ValidFrom:    now,
					ValidTo:      now.Add(12 * time.Hour),
					CreatedAt:    now,
				}
				if err := s.CreateCertificate(ctx, c, 10, now); err != nil {
					b.Error(err)
				}
			}

			b.ResetTimer()
			if bc.parallelism == 0 {
				for range b.N {
					create()
				}
			} else {
				b.SetParallelism(bc.parallelism)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						create()
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
		})
	}
}

// BenchmarkSweepExpired measures how fast expired sessions, each with one
// certificate, are removed from a real single-member etcd with fsync: by
// one replica's sweep, and by the sweeps of two replicas running at once
// over the same sessions, as every replica's sweeper does.
func BenchmarkSweepExpired(b *testing.B) {
	cluster := etcdtest.Start(b, 1)
	for _, replicas := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas-%d", replicas), func(b *testing.B) {
			prefix := freshPrefix()
			var stores []*etcd.Store
			for range replicas {
				stores = append(stores, mustOpen(b, etcd.Options{Client: cluster.Client(b), Prefix: prefix}))
			}
			s, ctx := stores[0], b.Context()
			if err := s.CreateIdentity(ctx, &store.Identity{ID: "i", Name: "i"}); err != nil {
				b.Fatal(err)
			}
			past := time.Now().Add(-time.Minute)
			var wg sync.WaitGroup
			var next atomic.Int64
			for range 16 {
				wg.Go(func() {
					for n := next.Add(1) - 1; n < int64(b.N); n = next.Add(1) - 1 {
						sid := fmt.Sprint("session-", n)
						sum := sha256.Sum256([]byte(sid))
						sess := &store.APISession{ID: sid, IdentityID: "i", Timeout: time.Hour,
							ExpiresAt: past, TokenHash: sum}
						c := &store.Certificate{ID: sid + "-cert", Fingerprint: hex.EncodeToString(sum[:20]),
							ValidTo: past.Add(time.Hour)}
						if err := s.CreateAPISession(ctx, sess, []*store.Certificate{c}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()

			b.ResetTimer()
			var removed atomic.Int64
			for _, st := range stores {
				wg.Go(func() {
					for {
						evs, err := st.DeleteExpiredAPISessions(ctx, time.Now(), 1000)
						if err != nil {
							b.Error(err)
							return
						}
						removed.Add(int64(len(evs)))
						if len(evs) == 0 {
							return
						}
					}
				})
			}
			wg.Wait()
			if got := removed.Load(); got != int64(b.N) {
				b.Errorf("removed %d sessions, want %d", got, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
		})
	}
}
