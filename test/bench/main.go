// Command bench runs sessioncert's benchmarks and prints their figures and
// ratios, all measured in one run on one machine, so that the ratios hold
// even when the machine is shared and noisy. `make bench` runs it.
//
// Each section is a function that appends rows to the report; -only selects
// sections by name. The sections are listed in sections().
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one line of the report.
type row struct {
	section, name, value, note string
}

// report collects rows and prints them as a table.
type report struct {
	rows []row
}

func (r *report) add(section, name, value, note string) {
	r.rows = append(r.rows, row{section, name, value, note})
	fmt.Fprintf(os.Stderr, "  %-12s %-48s %s\n", section, name, value)
}

// last returns the value of the newest row named name as a number, or 0.
func (r *report) last(name string) float64 {
	for i := len(r.rows) - 1; i >= 0; i-- {
		if r.rows[i].name == name {
			var v float64
			_, _ = fmt.Sscanf(r.rows[i].value, "%g", &v)
			return v
		}
	}
	return 0
}

func (r *report) print() {
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "SECTION\tMEASURE\tVALUE\tNOTE")
	for _, x := range r.rows {
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", x.section, x.name, x.value, x.note)
	}
	_ = w.Flush()
}

// section is one group of benchmarks.
type section struct {
	name string
	run  func(r *report) error
}

// sections lists every benchmark group in the order they run. Add a new
// group here.
func sections() []section {
	return []section{
		{"sessions", benchSessions},
		{"issuance", benchIssuance},
		{"gate", benchGate},
	}
}

// serverBin is the sessioncert-server binary the end-to-end benchmarks run.
var serverBin = "bin/sessioncert-server"

func main() {
	only := flag.String("only", "", "comma-separated sections to run (default all)")
	flag.StringVar(&serverBin, "server", serverBin, "the sessioncert-server binary to run")
	flag.Parse()
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s != "" {
			want[s] = true
		}
	}

	var r report
	failed := false
	start := time.Now()
	for _, s := range sections() {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", s.name)
		if err := s.run(&r); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
			failed = true
		}
	}
	fmt.Println()
	r.print()
	fmt.Printf("\n(total %s; medians over repeated runs where noted)\n", time.Since(start).Round(time.Second))
	if failed {
		os.Exit(1)
	}
}
