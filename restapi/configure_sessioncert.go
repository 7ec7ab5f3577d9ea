// This file is safe to edit. Once it exists it will not be overwritten

package restapi

import (
	"crypto/tls"
	"net/http"

	"github.com/sessioncert/sessioncert/restapi/operations"
)

// sessioncert-server does not run the generated Server of this package: its
// own main (cmd/sessioncert-server) builds the API through pkg/server, which
// registers every handler (pkg/handlers), the security handler, ServeError
// and the middleware. These hooks exist because the generated Server refers
// to them; they add nothing, so that the generated Server, if someone runs
// it, serves exactly the operations' handlers and no hidden defaults.

func configureFlags(_ *operations.SessioncertAPI) {}

func configureAPI(api *operations.SessioncertAPI) http.Handler {
	return api.Serve(nil)
}

func configureTLS(_ *tls.Config) {}

func configureServer(_ *http.Server, _, _ string) {}
