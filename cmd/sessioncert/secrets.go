package main

import (
	"bytes"
	"fmt"
	"os"
)

// Environment variables that give a secret when neither its flag nor its
// file flag does.
const (
	envPassword    = "SESSIONCERT_PASSWORD"
	envJWT         = "SESSIONCERT_JWT"
	envNewPassword = "SESSIONCERT_NEW_PASSWORD" //nolint:gosec // G101: a variable's name, no secret
)

// secretSource is where a command finds a secret: its flag, its file flag,
// an environment variable or a prompt on the terminal, in that order. The
// variable is read here rather than by go-flags, which would make it the
// flag's value and so a conflict with the file flag.
type secretSource struct {
	what     string // "password", "JWT"
	flag     string // its flag, for messages
	value    string
	file     string
	fileFlag string
	env      string // the environment variable
	confirm  bool   // prompt twice, for a new secret
}

// secret returns the secret from the first source that has it. It is a
// usage error to give both flags, or none of the sources when there is no
// terminal to prompt on.
func (a *app) secret(s secretSource) (string, error) {
	switch {
	case s.value != "" && s.file != "":
		return "", usagef("give %s or %s, not both", s.flag, s.fileFlag)
	case s.value != "":
		return s.value, nil
	case s.file != "":
		return readSecretFile(s.file, s.what)
	case os.Getenv(s.env) != "":
		return os.Getenv(s.env), nil
	case a.io.prompt == nil:
		return "", usagef("no %s: use %s, %s, $%s or a terminal", s.what, s.flag, s.fileFlag,
			s.env)
	}
	v, err := a.io.prompt(upperFirst(s.what) + ": ")
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", usagef("the %s is empty", s.what)
	}
	if s.confirm {
		again, err := a.io.prompt("Repeat the " + s.what + ": ")
		if err != nil {
			return "", err
		}
		if again != v {
			return "", usagef("the two %ss differ", s.what)
		}
	}
	return v, nil
}

// readSecretFile returns the first line of path: a file written by echo or
// an editor ends in a newline that is not part of the secret.
func readSecretFile(path, what string) (string, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the user names the file to read
	if err != nil {
		return "", fmt.Errorf("read the %s: %w", what, err)
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return "", fmt.Errorf("the %s file %s is empty", what, path)
	}
	return string(b), nil
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return string(bytes.ToUpper([]byte(s[:1]))) + s[1:]
}
