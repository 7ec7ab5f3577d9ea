package ca

import (
	"testing"
	"time"
)

// benchKinds are the CSR key types of the benchmarks.
var benchKinds = []string{"P-256", "P-384", "RSA-2048", "Ed25519"}

// newBenchCA is a CA like the development one: an ECDSA P-256 intermediate
// under an ECDSA P-256 root, on the real clock.
func newBenchCA(b *testing.B) *CA {
	b.Helper()
	pki := newTestPKI(b, time.Now(), "P-256")
	ca, err := New(Config{Chain: pki.chain(), Signer: pki.interKey, TrustDomain: testTD})
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	return ca
}

// reportRate adds certificates per second of wall time, the figure that
// matters for capacity, to the per-operation time.
func reportRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "certs/s")
	}
}

// BenchmarkIssue measures the whole path of one certificate, as a request
// takes it: PEM decode, CSR parse and checks (signature included), signing,
// and the self-check that parses and verifies the leaf against the chain.
// It runs on every core.
func BenchmarkIssue(b *testing.B) {
	ca := newBenchCA(b)
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			csrPEM := makeCSR(b, testKey(b, kind, "client"), nil)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					csr, err := ParseCSR(csrPEM)
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := ca.Sign(testRequest(csr)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRate(b)
		})
	}
}

// BenchmarkParseCSR is the first stage of BenchmarkIssue alone.
func BenchmarkParseCSR(b *testing.B) {
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			csrPEM := makeCSR(b, testKey(b, kind, "client"), nil)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := ParseCSR(csrPEM); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRate(b)
		})
	}
}

// BenchmarkSign is the second stage of BenchmarkIssue alone: signing and
// the self-check.
func BenchmarkSign(b *testing.B) {
	ca := newBenchCA(b)
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			csr := mustParseCSR(b, makeCSR(b, testKey(b, kind, "client"), nil))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := ca.Sign(testRequest(csr)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRate(b)
		})
	}
}
