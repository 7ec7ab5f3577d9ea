package auth

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

var cheap = HashParams{Time: 1, Memory: 64, Threads: 1}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse", DefaultHashParams, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q does not record argon2id with the default parameters", h)
	}
	if strings.Contains(h, "correct horse") {
		t.Error("hash contains the password")
	}
	for _, tc := range []struct {
		password string
		want     bool
	}{{"correct horse", true}, {"correct hors", false}, {"", false}, {"Correct horse", false}} {
		got, err := VerifyPassword(h, tc.password)
		if err != nil || got != tc.want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", tc.password, got, err, tc.want)
		}
	}
	again, err := HashPassword("correct horse", DefaultHashParams, rand.Reader)
	if err != nil || again == h {
		t.Errorf("two hashes of one password are equal: the salt is not fresh (%v)", err)
	}
}

func TestVerifyMalformedHash(t *testing.T) {
	good, err := HashPassword("pw", cheap, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	for name, h := range map[string]string{
		"empty":         "",
		"bcrypt":        "$2a$10$abcdefghijklmnopqrstuu",
		"argon2i":       strings.Replace(good, "argon2id", "argon2i", 1),
		"wrong version": strings.Replace(good, "v=19", "v=16", 1),
		"zero time":     strings.Replace(good, "t=1", "t=0", 1),
		"bad salt":      strings.Join([]string{"", parts[1], parts[2], parts[3], "!!!", parts[5]}, "$"),
		"no key":        strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], ""}, "$"),
		"huge key": strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4],
			strings.Repeat("A", 2000)}, "$"),
	} {
		t.Run(name, func(t *testing.T) {
			ok, err := VerifyPassword(h, "pw")
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Errorf("VerifyPassword = %v, %v; want false, ErrMalformedHash", ok, err)
			}
		})
	}
}
