package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/sessioncert/sessioncert/pkg/sdk"
)

// Exit statuses. Scripts can tell a refusal, which retrying will not fix,
// from a failure to get an answer at all.
const (
	exitOK      = 0
	exitRefused = 1 // the controller refused, or there is no session
	exitUsage   = 2 // the command line is wrong
	exitFailed  = 3 // no answer: network, TLS, local files
)

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// fail prints err as one line on stderr and returns its exit status.
func (a *app) fail(err error) int {
	line, code := describe(err)
	_, _ = fmt.Fprintln(a.io.err, "error: "+oneLine(line))
	return code
}

// describe turns err into the text after "error: " and an exit status.
func describe(err error) (string, int) {
	var usage *usageError
	if errors.As(err, &usage) {
		return usage.msg, exitUsage
	}
	if errors.Is(err, errNotLoggedIn) {
		return err.Error(), exitRefused
	}
	if ae, ok := sdk.AsAPIError(err); ok {
		// Without the contract's error envelope the reply is no refusal by
		// a controller: a proxy's page, or a server that is not one.
		if ae.Code == "" {
			return describeAPIError(ae), exitFailed
		}
		return describeAPIError(ae), exitRefused
	}

	// No answer from the controller: say why in the words a user can act on.
	var unknownCA x509.UnknownAuthorityError
	if errors.As(err, &unknownCA) {
		return "the controller's TLS certificate is not signed by a trusted CA " +
			"(pass its CA bundle with --ca or SESSIONCERT_CA)", exitFailed
	}
	var hostname x509.HostnameError
	if errors.As(err, &hostname) {
		return fmt.Sprintf("the controller's TLS certificate is not valid for %s",
			hostname.Host), exitFailed
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Sprintf("cannot reach the controller: %v", ue.Err), exitFailed
	}
	return err.Error(), exitFailed
}

func describeAPIError(ae *sdk.APIError) string {
	if ae.Code == "" {
		return fmt.Sprintf("unexpected reply with status %d and no error details "+
			"(is --controller a sessioncert controller?)", ae.Status)
	}
	msg := ae.Code + ": " + ae.Message
	if c := ae.Cause; c != nil {
		switch {
		case c.Field != "" && c.Reason != "":
			msg += fmt.Sprintf(" (%s: %s)", c.Field, c.Reason)
		case c.Field != "":
			msg += fmt.Sprintf(" (%s)", c.Field)
		case c.Code != "":
			msg += fmt.Sprintf(" (%s: %s)", c.Code, c.Message)
		}
	}
	if ae.Code == sdk.CodeUnauthorized {
		msg += " (run sessioncert login)"
	}
	return msg
}

// oneLine keeps text, some of which comes from the controller, on one line
// and free of control characters.
func oneLine(s string) string {
	breaks := func(r rune) bool { return r == '\n' || r == '\r' }
	return printable(strings.Join(strings.FieldsFunc(s, breaks), " "))
}
