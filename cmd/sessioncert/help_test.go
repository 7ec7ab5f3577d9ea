package main

import (
	"context"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/jessevdk/go-flags"
)

// commandPaths returns the words that name every runnable command, such as
// ["cert", "create"].
func commandPaths(t *testing.T) [][]string {
	t.Helper()
	p, err := (&app{io: streams{out: io.Discard, err: io.Discard}}).parser()
	if err != nil {
		t.Fatal(err)
	}
	var paths [][]string
	var walk func(prefix []string, c *flags.Command)
	walk = func(prefix []string, c *flags.Command) {
		for _, sub := range c.Commands() {
			path := append(append([]string{}, prefix...), sub.Name)
			if len(sub.Commands()) == 0 {
				paths = append(paths, path)
			}
			walk(path, sub)
		}
	}
	walk(nil, p.Command)
	return paths
}

// TestHelp reads the --help of every command as a user at an 80-column
// terminal would: every option explained, and no word broken to fit.
func TestHelp(t *testing.T) {
	// go-flags breaks a word too long for the help column with a hyphen and
	// a blank line.
	broken := regexp.MustCompile(`\S-\n\s*\n`)
	option := regexp.MustCompile(`^\s+(-\w, )?--[\w-]+(=\S*)?$`)
	for _, path := range commandPaths(t) {
		t.Run(strings.Join(path, " "), func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(context.Background(), append(path, "--help"),
				streams{out: &out, err: &errOut})
			help := out.String()
			if code != exitOK || errOut.Len() != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut.String())
			}
			if broken.MatchString(help) {
				t.Errorf("a word is broken across lines:\n%s", help)
			}
			for _, line := range strings.Split(help, "\n") {
				if len(line) > 80 {
					t.Errorf("line wider than 80 columns: %q", line)
				}
				if option.MatchString(line) && !strings.Contains(line, "--help") {
					t.Errorf("option without help: %q", line)
				}
			}
		})
	}
}
