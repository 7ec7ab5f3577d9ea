package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// cpuShare is a group of functions and the share of server CPU spent in
// them (cumulative).
type cpuShare struct {
	name    string
	pattern *regexp.Regexp
	share   float64
}

// profileSummary reads a CPU profile with `go tool pprof` and returns the
// cumulative share of the functions that matter for the request path. The
// groups overlap where one calls another (Sign within Issue, say).
func profileSummary(bin, profile string) ([]cpuShare, error) {
	cmd := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=100000", bin, profile)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof: %w", err)
	}
	groups := []cpuShare{
		{name: "handler (all of it)", pattern: regexp.MustCompile(`createCertificateHandler\.Handle$`)},
		{name: "  CA sign + self-check", pattern: regexp.MustCompile(`pkg/ca\.\(\*CA\)\.Sign$`)},
		{name: "  CSR parse + signature check", pattern: regexp.MustCompile(`pkg/ca\.ParseCSR$`)},
		{name: "  audit write and sync", pattern: regexp.MustCompile(`pkg/audit\.\(\*Log\)\.WriteDurable$`)},
		{name: "store commit (bolt group commit)",
			pattern: regexp.MustCompile(`pkg/store/bolt\.\(\*committer\)\.commit$`)},
		{name: "go-openapi bind + validate",
			pattern: regexp.MustCompile(`middleware\.\(\*Context\)\.BindValidRequest$`)},
		{name: "reply JSON encoding", pattern: regexp.MustCompile(`runtime\.JSONProducer\.func1$`)},
		{name: "TLS record crypto", pattern: regexp.MustCompile(`crypto/tls\.\(\*Conn\)\.(Read|Write)$`)},
		{name: "garbage collector", pattern: regexp.MustCompile(`runtime\.gcBgMarkWorker$`)},
		{name: "system calls", pattern: regexp.MustCompile(`syscall\.Syscall6$`)},
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// flat flat% sum% cum cum% function
		if len(f) < 6 || !strings.HasSuffix(f[4], "%") {
			continue
		}
		cum, err := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err != nil {
			continue
		}
		fn := strings.Join(f[5:], " ")
		for i := range groups {
			if groups[i].pattern.MatchString(fn) && cum > groups[i].share {
				groups[i].share = cum
			}
		}
	}
	return groups, nil
}
