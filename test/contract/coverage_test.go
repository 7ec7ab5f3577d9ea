package contract

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// pair is one declared response of one operation.
type pair struct {
	op     string
	status int
}

// allowance marks a declared response that no client can provoke on purpose.
// An op of "*" stands for every operation that declares the status.
type allowance struct {
	op     string
	status int
	reason string
}

// unreachableByDesign is the whole list of declared responses the suite does
// not need to see. Keep it short: anything declared, not listed here and not
// exercised fails the suite, which is how an operation added to the spec
// without a scenario is caught.
var unreachableByDesign = []allowance{
	{
		op: "*", status: 500,
		reason: "UNHANDLED is a server bug: no input may cause it, and the suite fails on any",
	},
}

func allowed(p pair) (string, bool) {
	for _, a := range unreachableByDesign {
		if a.status == p.status && (a.op == "*" || a.op == p.op) {
			return a.reason, true
		}
	}
	return "", false
}

// verdict is what the suite made of one declared response.
type verdict int

const (
	vMissing     verdict = iota // declared, not exercised, not excused: a failure
	vExercised                  // a response with this status was checked
	vUnreachable                // on the allow-list
	vNotRun                     // needs in-process access; external mode skipped it
)

var verdictMark = map[verdict]string{
	vMissing:     "MISSING",
	vExercised:   "ok",
	vUnreachable: "u",
	vNotRun:      "ext",
}

// coverageRow is one operation's line of the table.
type coverageRow struct {
	op       *operation
	verdicts map[int]verdict
	reasons  map[int]string
	codes    map[int][]string
}

// coverage is the operation × status table of a run.
type coverage struct {
	rows     []coverageRow
	statuses []int
}

// computeCoverage judges every declared response of the spec against what
// was seen. notRun names responses the external mode could not provoke,
// with the reason.
func computeCoverage(s *apiSpec, seen map[pair]map[string]bool, notRun map[pair]string) *coverage {
	cov := &coverage{}
	all := map[int]bool{}
	for _, op := range s.ops {
		row := coverageRow{
			op: op, verdicts: map[int]verdict{}, reasons: map[int]string{}, codes: map[int][]string{},
		}
		for _, st := range op.statuses() {
			all[st] = true
			p := pair{op.id, st}
			if codes, ok := seen[p]; ok {
				row.verdicts[st] = vExercised
				for c := range codes {
					row.codes[st] = append(row.codes[st], c)
				}
				sort.Strings(row.codes[st])
				continue
			}
			if reason, ok := allowed(p); ok {
				row.verdicts[st], row.reasons[st] = vUnreachable, reason
				continue
			}
			if reason, ok := notRun[p]; ok {
				row.verdicts[st], row.reasons[st] = vNotRun, reason
				continue
			}
			row.verdicts[st] = vMissing
		}
		cov.rows = append(cov.rows, row)
	}
	for st := range all {
		cov.statuses = append(cov.statuses, st)
	}
	sort.Ints(cov.statuses)
	return cov
}

// missing lists the declared responses that were neither exercised nor
// excused.
func (c *coverage) missing() []pair {
	var out []pair
	for _, r := range c.rows {
		for _, st := range r.op.statuses() {
			if r.verdicts[st] == vMissing {
				out = append(out, pair{r.op.id, st})
			}
		}
	}
	return out
}

// String renders the table, its legend, the reasons of every excused
// response and the error codes seen.
func (c *coverage) String() string {
	var b strings.Builder
	width := len("operation")
	for _, r := range c.rows {
		width = max(width, len(r.op.id))
	}
	fmt.Fprintf(&b, "%-*s", width, "operation")
	for _, st := range c.statuses {
		fmt.Fprintf(&b, " %7d", st)
	}
	b.WriteString("\n")
	counts := map[verdict]int{}
	for _, r := range c.rows {
		fmt.Fprintf(&b, "%-*s", width, r.op.id)
		for _, st := range c.statuses {
			v, declared := r.verdicts[st]
			mark := "."
			if declared {
				mark = verdictMark[v]
				counts[v]++
			}
			fmt.Fprintf(&b, " %7s", mark)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nok exercised (%d), u unreachable by design (%d), "+
		"ext not run in external mode (%d), MISSING not exercised (%d), . not declared\n",
		counts[vExercised], counts[vUnreachable], counts[vNotRun], counts[vMissing])

	reasons := map[string][]string{}
	var order []string
	for _, r := range c.rows {
		for _, st := range r.op.statuses() {
			reason := r.reasons[st]
			if reason == "" {
				continue
			}
			label := verdictMark[r.verdicts[st]] + ": " + reason
			if _, ok := reasons[label]; !ok {
				order = append(order, label)
			}
			reasons[label] = append(reasons[label], r.op.id+" "+strconv.Itoa(st))
		}
	}
	for _, label := range order {
		fmt.Fprintf(&b, "\n%s\n    %s\n", label, wrapList(reasons[label], 96))
	}

	b.WriteString("\nerror codes seen:\n")
	for _, r := range c.rows {
		for _, st := range r.op.statuses() {
			if codes := r.codes[st]; len(codes) > 0 {
				fmt.Fprintf(&b, "    %-*s %d  %s\n", width, r.op.id, st, strings.Join(codes, ", "))
			}
		}
	}
	return b.String()
}

// wrapList joins items with commas, breaking lines near width.
func wrapList(items []string, width int) string {
	var b strings.Builder
	line := 0
	for i, it := range items {
		if i > 0 {
			b.WriteString(",")
			line++
			if line+len(it)+1 > width {
				b.WriteString("\n    ")
				line = 0
			} else {
				b.WriteString(" ")
				line++
			}
		}
		b.WriteString(it)
		line += len(it)
	}
	return b.String()
}
