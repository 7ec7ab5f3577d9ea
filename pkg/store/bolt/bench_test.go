package bolt_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
	"github.com/sessioncert/sessioncert/pkg/store/bolt"
)

// BenchmarkCreateCertificate measures durable certificate inserts into a
// real file with fsync, as the request path makes them: with a cap of 10
// live certificates per session, 8 certificates going to each session.
// "serial" is one writer, so every insert pays a whole commit; in
// "parallel-N" N writers per core share commits through group commit.
func BenchmarkCreateCertificate(b *testing.B) {
	const perSession = 8
	chain := strings.Repeat("-----BEGIN CERTIFICATE-----\n"+strings.Repeat("A", 64)+"\n", 12)

	cases := []struct {
		name        string
		parallelism int // writers per GOMAXPROCS; 0 runs one writer
	}{
		{"serial", 0},
		{"parallel-1", 1},
		{"parallel-8", 8},
		{"parallel-32", 32},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			s, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			closeLater(b, s)
			ctx := b.Context()
			if err := s.CreateIdentity(ctx, &store.Identity{ID: "i", Name: "i"}); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			sessionID := func(n int64) string { return fmt.Sprintf("session-%d", n/perSession) }

			// The sessions exist before the clock starts; creating them
			// concurrently lets them share commits too.
			var wg sync.WaitGroup
			sessions := int64(b.N/perSession + 1)
			var next atomic.Int64
			for range 16 {
				wg.Go(func() {
					for k := next.Add(1) - 1; k < sessions; k = next.Add(1) - 1 {
						sid := sessionID(k * perSession)
						sess := &store.APISession{
							ID: sid, IdentityID: "i", ExpiresAt: now.Add(time.Hour),
							TokenHash: sha256.Sum256([]byte(sid)),
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
				sum := sha256.Sum256([]byte(fmt.Sprint("certificate-", n)))
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
			cpu0 := processCPU(b)
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
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/cert")
		})
	}
}

// processCPU is the user and system CPU time of this process so far,
// kernel time in write and fsync included.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
