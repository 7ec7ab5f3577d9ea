package etcd

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// keys builds the keys of the layout in the package comment. The fixed
// prefixes are built once; the per-record keys are concatenations of them.
type keys struct {
	p string

	live, marks, cause, sessions, certs string

	tokens, sessionExpiry, identitySessions, certIDs, certExpiry string

	identities, identityNames, identityExtIDs, identityAuths string

	authenticators, authUsernames, authFingerprints string

	signers, signerNames string
}

func newKeys(p string) keys {
	return keys{
		p:     p,
		live:  p + "live/",
		marks: p + "live/marks/",
		cause: p + "live/cause",

		sessions: p + "live/sessions/",
		certs:    p + "live/certs/",

		tokens:           p + "session-tokens/",
		sessionExpiry:    p + "session-expiry/",
		identitySessions: p + "identity-sessions/",
		certIDs:          p + "cert-ids/",
		certExpiry:       p + "cert-expiry/",

		identities:     p + "identities/",
		identityNames:  p + "identity-names/",
		identityExtIDs: p + "identity-external-ids/",
		identityAuths:  p + "identity-authenticators/",

		authenticators:   p + "authenticators/",
		authUsernames:    p + "authenticator-usernames/",
		authFingerprints: p + "authenticator-fingerprints/",

		signers:     p + "signers/",
		signerNames: p + "signer-names/",
	}
}

func (k keys) session(id string) string { return k.sessions + id }

func (k keys) token(h store.TokenHash) string { return k.tokens + hex.EncodeToString(h[:]) }

func (k keys) sessionExpiryOf(expiresAt time.Time, id string) string {
	return k.sessionExpiry + timeKey(expiresAt) + "/" + id
}

// sessionCerts is the prefix of the certificate records of a session.
func (k keys) sessionCerts(sessionID string) string { return k.certs + sessionID + "/" }

func (k keys) cert(sessionID, fingerprint string) string {
	return k.sessionCerts(sessionID) + fingerprint
}

// sessionCertIDs is the prefix of the certificate ids of a session.
func (k keys) sessionCertIDs(sessionID string) string { return k.certIDs + sessionID + "/" }

func (k keys) certID(sessionID, id string) string { return k.sessionCertIDs(sessionID) + id }

func (k keys) certExpiryOf(validTo time.Time, sessionID, id string) string {
	return k.certExpiry + timeKey(validTo) + "/" + sessionID + "/" + id
}

// ownedSessions is the prefix of the index of an identity's sessions.
func (k keys) ownedSessions(identityID string) string {
	return k.identitySessions + identityID + "/"
}

func (k keys) identitySession(identityID, sessionID string) string {
	return k.ownedSessions(identityID) + sessionID
}

func (k keys) identity(id string) string { return k.identities + id }

// ownedAuths is the prefix of the index of an identity's authenticators.
func (k keys) ownedAuths(identityID string) string { return k.identityAuths + identityID + "/" }

func (k keys) identityAuth(identityID, authID string) string {
	return k.ownedAuths(identityID) + authID
}

func (k keys) authenticator(id string) string { return k.authenticators + id }

func (k keys) signer(id string) string { return k.signers + id }

// upTo is the end of the range of time-ordered index entries under prefix
// whose time is not after t: every key "<prefix><ts>/..." with ts <= t
// sorts before it, because '/' sorts before '0' and ts has a fixed width.
func upTo(prefix string, t time.Time) string { return prefix + timeKey(t) + "0" }

// timeKeyLen is the length of timeKey's result.
const timeKeyLen = 24

// timeKey encodes t as 24 lower-case hex digits whose byte order is time
// order over the whole range of time.Time: seconds since the Unix epoch with
// the sign bit flipped (so negative ones sort first), then nanoseconds.
func timeKey(t time.Time) string {
	var b [12]byte
	// Reinterpreting the bits is the point: see above.
	binary.BigEndian.PutUint64(b[:8], uint64(t.Unix())^(1<<63)) //nolint:gosec // G115: intended
	binary.BigEndian.PutUint32(b[8:], uint32(t.Nanosecond()))   //nolint:gosec // G115: < 1e9
	return hex.EncodeToString(b[:])
}

// parseTimeKey reverses timeKey.
func parseTimeKey(s string) (time.Time, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 12 {
		return time.Time{}, fmt.Errorf("%w: time key %q", errCorrupt, s)
	}
	sec := int64(binary.BigEndian.Uint64(b[:8]) ^ (1 << 63)) //nolint:gosec // G115: see timeKey
	nsec := int64(binary.BigEndian.Uint32(b[8:]))
	return time.Unix(sec, nsec).UTC(), nil
}

// checkID refuses an id that cannot be a key segment: an empty one, and one
// with a slash, which separates the segments of composite keys.
func checkID(kind, id string) error {
	if id == "" {
		return fmt.Errorf("etcd: %s id is empty", kind)
	}
	if strings.IndexByte(id, '/') >= 0 {
		return fmt.Errorf("etcd: %s id %q contains a slash", kind, id)
	}
	return nil
}

// validID reports whether id could have been stored; lookups of other ids
// find nothing without asking etcd, and cannot reach into another record's
// keys through a slash.
func validID(id string) bool { return checkID("", id) == nil }

// rest returns key without prefix, and whether key had it.
func rest(key []byte, prefix string) (string, bool) {
	s := string(key)
	if !strings.HasPrefix(s, prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

// split2 splits "a/b" at its first slash.
func split2(s string) (string, string, bool) {
	a, b, ok := strings.Cut(s, "/")
	return a, b, ok && a != "" && b != ""
}
