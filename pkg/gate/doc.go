// Package gate is the admission library an edge router embeds. It decides
// whether a TLS client that presents a certificate chain and a session token
// may pass, asking the sessioncert controller on a miss and remembering each
// grant until the earlier of the certificate's and the session's expiry. It
// follows the controller's stream of removal events, so that a logout, an
// expiry, an administrator's delete or the delete of one certificate drops
// the cached grants at once and closes the connections that rode on them.
//
// The parts:
//
//   - [New] builds a [Gate] from a [Config]: the generated client pointed at
//     the controller, the credentials of a Router identity, a logger and a
//     clock.
//   - [Gate.Admit] decides one request. Refusals are [*RefusedError] values
//     whose code errors.Is matches against the sentinels such as
//     [ErrCertificateNotBound]. Concurrent misses for the same token and
//     certificate share one controller call.
//   - [Gate.Track] binds an open connection to the session and certificate
//     of an admission; the gate closes it when either is removed. It binds
//     only admissions granted while Run follows the stream, so a router
//     should accept clients once [Gate.Ready] is closed.
//   - [Gate.Run] follows the event stream and sends heartbeats until its
//     context ends. Cached grants are used only while Run follows the
//     stream, its last poll succeeded and it answered within
//     Config.MaxStale; otherwise every decision goes to the controller, and
//     fails when the controller cannot be reached.
//
// A grant that the controller made just before a removal can reach the gate
// after the removal's event. The gate numbers every change of its removal
// state with a generation, stamps each controller call with the generation
// at which it started, and keeps short-lived tombstones of removed sessions
// and certificates: a grant older than a matching tombstone, or older than a
// full reset, is never cached and never tracked. See [Gate.Track].
package gate
