// Command sessioncert is the command-line client of a sessioncert
// controller: log in, obtain API Session Certificates for keys made on this
// machine, and administer identities, authenticators, external JWT signers
// and API sessions.
//
// The session token of a login is kept in a file of mode 0600 in the
// configuration directory, with the controller it belongs to, until logout.
// Errors are one line on stderr, "error: <CODE>: <message>" for the
// controller's refusals, and the exit status says what kind of failure it
// was: 1 refused, 2 usage, 3 could not complete (network, TLS, files).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], streams{out: os.Stdout, err: os.Stderr, prompt: terminalPrompt()})
	stop()
	os.Exit(code)
}

// terminalPrompt returns a prompt that reads a secret from the terminal
// without echo, or nil when standard input is not a terminal: a script must
// then pass the secret by file or environment rather than hang.
func terminalPrompt() func(label string) (string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil
	}
	return func(label string) (string, error) {
		fmt.Fprint(os.Stderr, label)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", fmt.Errorf("read from the terminal: %w", err)
		}
		return string(b), nil
	}
}

// streams are where a run reads secrets and writes its output.
type streams struct {
	out io.Writer
	err io.Writer

	// prompt asks for a secret interactively; nil when there is no
	// terminal to ask on.
	prompt func(label string) (string, error)
}
