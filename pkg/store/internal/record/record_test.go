package record

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/store"
)

// roundTrip marshals rec, checks the names and order of the JSON fields
// against want, and unmarshals the JSON into a new value of R.
func roundTrip[R any](t *testing.T, rec *R, want []string) *R {
	t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if got := fieldNames(t, b); !reflect.DeepEqual(got, want) {
		t.Errorf("JSON fields of %s\n got %q\nwant %q", b, got, want)
	}
	var out R
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return &out
}

// fieldNames returns the names of the top-level fields of the JSON object
// b, in the order they are written.
func fieldNames(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		t.Fatalf("open object: %v", err)
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("field name: %v", err)
		}
		names = append(names, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("value of %q: %v", tok, err)
		}
	}
	return names
}

// The records must store times in UTC, so the inputs are in another zone
// and the wanted values are in UTC.
var (
	zone  = time.FixedZone("UTC+2", 2*60*60)
	t1    = time.Date(2026, 3, 4, 5, 6, 7, 8, zone)
	t2    = t1.Add(90 * time.Minute)
	t1UTC = t1.UTC()
	t2UTC = t2.UTC()
)

func TestIdentityRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		in     store.Identity
		want   store.Identity
		fields []string
	}{
		{
			name: "full",
			in: store.Identity{ID: "id1", Name: "alice", Type: "User", IsAdmin: true,
				ExternalID: "ext", CreatedAt: t1, UpdatedAt: t2},
			want: store.Identity{ID: "id1", Name: "alice", Type: "User", IsAdmin: true,
				ExternalID: "ext", CreatedAt: t1UTC, UpdatedAt: t2UTC},
			fields: []string{"id", "name", "type", "isAdmin", "externalId", "createdAt",
				"updatedAt"},
		},
		{
			name:   "zero",
			want:   store.Identity{CreatedAt: time.Time{}.UTC(), UpdatedAt: time.Time{}.UTC()},
			fields: []string{"id", "name", "type", "createdAt", "updatedAt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := roundTrip(t, FromIdentity(&tt.in), tt.fields).Identity()
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("round trip\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestAuthenticatorRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		in     store.Authenticator
		want   store.Authenticator
		fields []string
	}{
		{
			name: "full",
			in: store.Authenticator{ID: "a1", IdentityID: "id1", Method: "cert",
				Username: "alice", PasswordHash: "ph", CertPEM: "pem", Fingerprint: "fp",
				CreatedAt: t1, UpdatedAt: t2},
			want: store.Authenticator{ID: "a1", IdentityID: "id1", Method: "cert",
				Username: "alice", PasswordHash: "ph", CertPEM: "pem", Fingerprint: "fp",
				CreatedAt: t1UTC, UpdatedAt: t2UTC},
			fields: []string{"id", "identityId", "method", "username", "passwordHash",
				"certPem", "fingerprint", "createdAt", "updatedAt"},
		},
		{
			name:   "zero",
			want:   store.Authenticator{CreatedAt: time.Time{}.UTC(), UpdatedAt: time.Time{}.UTC()},
			fields: []string{"id", "identityId", "method", "createdAt", "updatedAt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := roundTrip(t, FromAuthenticator(&tt.in), tt.fields).Authenticator()
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("round trip\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestSignerRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		in     store.ExtJWTSigner
		want   store.ExtJWTSigner
		fields []string
	}{
		{
			name: "full",
			in: store.ExtJWTSigner{ID: "s1", Name: "idp", Issuer: "iss", Audience: "aud",
				JWKSEndpoint: "https://idp/jwks", CertPEM: "pem", ClaimsProperty: "sub",
				UseExternalID: true, Enabled: true, CreatedAt: t1, UpdatedAt: t2},
			want: store.ExtJWTSigner{ID: "s1", Name: "idp", Issuer: "iss", Audience: "aud",
				JWKSEndpoint: "https://idp/jwks", CertPEM: "pem", ClaimsProperty: "sub",
				UseExternalID: true, Enabled: true, CreatedAt: t1UTC, UpdatedAt: t2UTC},
			fields: []string{"id", "name", "issuer", "audience", "jwksEndpoint", "certPem",
				"claimsProperty", "useExternalId", "enabled", "createdAt", "updatedAt"},
		},
		{
			name:   "zero",
			want:   store.ExtJWTSigner{CreatedAt: time.Time{}.UTC(), UpdatedAt: time.Time{}.UTC()},
			fields: []string{"id", "name", "createdAt", "updatedAt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := roundTrip(t, FromSigner(&tt.in), tt.fields).Signer()
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("round trip\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

// TestSessionRoundTrip runs the session record with both encodings of the
// token hash the backends use: bytes and a hex string.
func TestSessionRoundTrip(t *testing.T) {
	var h store.TokenHash
	for i := range h {
		h[i] = byte(i + 1)
	}
	full := store.APISession{ID: "sess1", TokenHash: h, IdentityID: "id1",
		AuthenticatorID: "a1", AuthMethod: "password", IPAddress: "192.0.2.1",
		ConfigTypes: []string{"c1", "c2"}, Timeout: 30 * time.Minute, CreatedAt: t1,
		UpdatedAt: t2, LastActivityAt: t2, ExpiresAt: t2.Add(time.Hour)}
	fullWant := full
	fullWant.CreatedAt, fullWant.UpdatedAt = t1UTC, t2UTC
	fullWant.LastActivityAt, fullWant.ExpiresAt = t2UTC, t2UTC.Add(time.Hour)
	fullFields := []string{"id", "tokenHash", "identityId", "authenticatorId", "authMethod",
		"ipAddress", "configTypes", "timeoutNanos", "createdAt", "updatedAt",
		"lastActivityAt", "expiresAt"}

	zeroWant := store.APISession{CreatedAt: time.Time{}.UTC(), UpdatedAt: time.Time{}.UTC(),
		LastActivityAt: time.Time{}.UTC(), ExpiresAt: time.Time{}.UTC()}
	zeroFields := []string{"id", "tokenHash", "identityId", "timeoutNanos", "createdAt",
		"updatedAt", "lastActivityAt", "expiresAt"}

	tests := []struct {
		name   string
		in     store.APISession
		want   store.APISession
		fields []string
	}{
		{name: "full", in: full, want: fullWant, fields: fullFields},
		{name: "zero", want: zeroWant, fields: zeroFields},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/bytes", func(t *testing.T) {
			rec := roundTrip(t, FromSession(&tt.in, tt.in.TokenHash[:]), tt.fields)
			var h store.TokenHash
			copy(h[:], rec.TokenHash)
			if got := rec.Session(h); !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("round trip\n got %+v\nwant %+v", *got, tt.want)
			}
		})
		t.Run(tt.name+"/hex", func(t *testing.T) {
			enc := hex.EncodeToString(tt.in.TokenHash[:])
			rec := roundTrip(t, FromSession(&tt.in, enc), tt.fields)
			if rec.TokenHash != enc {
				t.Fatalf("token hash %q, want %q", rec.TokenHash, enc)
			}
			if got := rec.Session(tt.in.TokenHash); !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("round trip\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

// TestSessionCopiesConfigTypes checks that a record and its session do not
// share the backing array of ConfigTypes with their source.
func TestSessionCopiesConfigTypes(t *testing.T) {
	s := &store.APISession{ConfigTypes: []string{"c1"}}
	rec := FromSession(s, "")
	s.ConfigTypes[0] = "changed"
	if rec.ConfigTypes[0] != "c1" {
		t.Errorf("record shares ConfigTypes with the session it was made from")
	}
	out := rec.Session(store.TokenHash{})
	rec.ConfigTypes[0] = "changed"
	if out.ConfigTypes[0] != "c1" {
		t.Errorf("session shares ConfigTypes with the record it was read from")
	}
}

func TestCertificateRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		in        store.Certificate
		sessionID string
		want      store.Certificate
		fields    []string
	}{
		{
			name: "full",
			in: store.Certificate{ID: "c1", APISessionID: "ignored", IdentityID: "id1",
				Fingerprint: "fp", Subject: "CN=alice", Serial: "01", ChainPEM: "pem",
				ValidFrom: t1, ValidTo: t2, CreatedAt: t1},
			sessionID: "sess1",
			want: store.Certificate{ID: "c1", APISessionID: "sess1", IdentityID: "id1",
				Fingerprint: "fp", Subject: "CN=alice", Serial: "01", ChainPEM: "pem",
				ValidFrom: t1UTC, ValidTo: t2UTC, CreatedAt: t1UTC},
			fields: []string{"id", "apiSessionId", "identityId", "fingerprint", "subject",
				"serial", "chainPem", "validFrom", "validTo", "createdAt"},
		},
		{
			name: "zero",
			want: store.Certificate{ValidFrom: time.Time{}.UTC(), ValidTo: time.Time{}.UTC(),
				CreatedAt: time.Time{}.UTC()},
			fields: []string{"id", "apiSessionId", "fingerprint", "validFrom", "validTo",
				"createdAt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := FromCertificate(&tt.in, tt.sessionID)
			got := roundTrip(t, rec, tt.fields).Certificate()
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("round trip\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

// TestTimesInUTC checks the stored text of a time: UTC with nanoseconds.
func TestTimesInUTC(t *testing.T) {
	b, err := json.Marshal(FromIdentity(&store.Identity{CreatedAt: t1, UpdatedAt: t1}))
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var raw map[string]string
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	if got, want := raw["createdAt"], "2026-03-04T03:06:07.000000008Z"; got != want {
		t.Errorf("createdAt %q, want %q", got, want)
	}
}
