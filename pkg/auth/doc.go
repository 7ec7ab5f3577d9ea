// Package auth holds the primary authenticators (password, client
// certificate, external JWT) that turn a login request into an identity, and
// the Principal type that authenticated requests carry.
package auth
