package auth

import (
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// Principal is who an authenticated request acts as: a live API session and
// its identity, as resolved from the request's zt-session token. Handlers
// receive it from the generated server and must not modify it.
type Principal struct {
	APISessionID    string
	IdentityID      string
	IdentityName    string
	IdentityType    store.IdentityType
	IsAdmin         bool
	AuthenticatorID string
	ExpiresAt       time.Time
}
