package audit

import (
	"reflect"
	"strings"
	"time"
	"unicode"
)

// Fields returns v (a struct or a pointer to one) as a map from its exported
// field names, in lower camel case as the rest of the trail writes keys
// ("IdentityID" becomes "identityId", "CertPEM" "certPem"), to their values,
// for the Before and After of a Change. Fields whose name mentions a
// password, a secret or a token are left out, whatever the caller passed.
// Nested structs other than time.Time are converted the same way. A nil v,
// a nil pointer or a value that is not a struct is returned unchanged.
func Fields(v any) any {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return v
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct || rv.Type() == reflect.TypeFor[time.Time]() {
		return v
	}
	out := make(map[string]any, rv.NumField())
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		if !f.IsExported() || secretName(f.Name) {
			continue
		}
		out[camelCase(f.Name)] = Fields(rv.Field(i).Interface())
	}
	return out
}

func secretName(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "password") || strings.Contains(n, "secret") || strings.Contains(n, "token")
}

// camelCase turns a Go field name into a JSON key: its first word in lower
// case, and every later word, acronyms included, capitalised.
func camelCase(name string) string {
	var b strings.Builder
	for i, w := range words(name) {
		w = strings.ToLower(w)
		if i > 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		b.WriteString(w)
	}
	return b.String()
}

// words splits a Go name at each change from lower to upper case, and
// before the last capital of an acronym that a word follows: "JWKSEndpoint"
// is "JWKS" and "Endpoint".
func words(name string) []string {
	r := []rune(name)
	var out []string
	start := 0
	for i := 1; i < len(r); i++ {
		lowerBefore := !unicode.IsUpper(r[i-1])
		acronymEnds := unicode.IsUpper(r[i-1]) && i+1 < len(r) && unicode.IsLower(r[i+1])
		if unicode.IsUpper(r[i]) && (lowerBefore || acronymEnds) {
			out = append(out, string(r[start:i]))
			start = i
		}
	}
	return append(out, string(r[start:]))
}
