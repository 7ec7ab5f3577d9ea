package server_test

import (
	"testing"

	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/server"
	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// BenchmarkIssueHTTPS issues certificates through the whole server over
// TLS, in process, so that `go test -cpuprofile` shows where a request's
// time goes around the crypto. make bench measures the same against the
// server binary.
func BenchmarkIssueHTTPS(b *testing.B) {
	e := servertest.Start(b, servertest.Options{Config: func(c *server.Config) {
		c.Certs.RateBurst = 0
		c.Certs.MaxCertsPerSession = 0
	}})
	s := e.Admin(b)
	_, csr := servertest.NewCSR(b)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := e.Client(e.NewHTTPClient(nil)).CurrentAPISession
		for pb.Next() {
			if _, err := c.CreateCurrentAPISessionCertificate(
				&current_api_session.CreateCurrentAPISessionCertificateParams{
					SessionCertificate: &models.CurrentAPISessionCertificateCreate{Csr: &csr},
				}, s.Auth); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
