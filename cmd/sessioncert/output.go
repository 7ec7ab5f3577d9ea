package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/go-openapi/strfmt"

	"github.com/sessioncert/sessioncert/models"
)

// emit prints data, the "data" of the API's reply, as indented JSON with
// --json, and otherwise as the text that render writes through an aligning
// tab writer: cells separated by tabs, rows by newlines.
func (a *app) emit(data any, render func(w io.Writer)) error {
	if a.opts.JSON {
		enc := json.NewEncoder(a.io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(data)
	}
	tw := tabwriter.NewWriter(a.io.out, 0, 0, 2, ' ', 0)
	render(tw)
	return tw.Flush()
}

// row writes one table row.
func row(w io.Writer, cells ...string) {
	for i, c := range cells {
		cells[i] = cell(c)
	}
	_, _ = fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// field writes one "Name:  value" line of a detail view.
func field(w io.Writer, name, value string) {
	_, _ = fmt.Fprintf(w, "%s:\t%s\n", name, cell(value))
}

// cell keeps a value from the controller from breaking the table or the
// terminal: "-" for nothing, and no control characters (see printable).
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return printable(s)
}

// printable returns s with tabs and line breaks as spaces and every other
// control character as U+FFFD. Names and messages come from the controller
// and, through it, from whoever created the entity; an escape sequence in
// one must not move the cursor or rewrite what the terminal shows.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.IsControl(r):
			return unicode.ReplacementChar
		}
		return r
	}, s)
}

// page is the paging options of a list command, which embeds it.
type page struct {
	Limit  int64 `long:"limit" default:"100" value-name:"N"`
	Offset int64 `long:"offset" default:"0" value-name:"N"`
}

func (page) optionHelp() map[string]string {
	return map[string]string{
		"limit":  "list at most N (1 to 500)",
		"offset": "skip the first N",
	}
}

func (p page) check() error {
	if p.Limit < 1 || p.Limit > 500 {
		return usagef("--limit %d is not between 1 and 500", p.Limit)
	}
	if p.Offset < 0 {
		return usagef("--offset %d is negative", p.Offset)
	}
	return nil
}

// more tells, on stderr so that stdout stays data, when a list has more
// entries than it showed.
func (a *app) more(p page, shown int, meta *models.ListMeta) {
	if meta == nil || meta.Pagination == nil || meta.Pagination.TotalCount == nil {
		return
	}
	total := *meta.Pagination.TotalCount
	if next := p.Offset + int64(shown); shown > 0 && next < total {
		_, _ = fmt.Fprintf(a.io.err, "showing %d-%d of %d; see more with --offset %d\n",
			p.Offset+1, next, total, next)
	}
}

// errNoData is returned for a success reply without the data the contract
// promises: the server at --controller is not a sessioncert controller.
var errNoData = errors.New("the reply has no data: is --controller a sessioncert controller?")

// present returns d, the data of a reply, or errNoData when it is missing.
func present[T any](d *T) (*T, error) {
	if d == nil {
		return nil, errNoData
	}
	return d, nil
}

// items returns the data of a list reply, or errNoData when an item is
// missing.
func items[T any](data []*T) ([]*T, error) {
	for _, d := range data {
		if d == nil {
			return nil, errNoData
		}
	}
	return data, nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func yesNo(p *bool) string {
	if p == nil {
		return ""
	}
	if *p {
		return "yes"
	}
	return "no"
}

func when(t *strfmt.DateTime) string {
	if t == nil {
		return ""
	}
	return whenTime(time.Time(*t))
}

func whenTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func seconds(p *int64) string {
	if p == nil {
		return ""
	}
	return (time.Duration(*p) * time.Second).String()
}

func count(n int) string { return strconv.Itoa(n) }
