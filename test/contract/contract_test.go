package contract

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// TestContract walks the scenario against an in-process server, or against
// the deployment named by SESSIONCERT_CONTRACT_URL, and judges the coverage
// of the spec.
func TestContract(t *testing.T) {
	t.Parallel()
	tg, err := externalTarget(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if tg == nil {
		tg = inProcessTarget(t)
	}
	cov := runScenario(t, tg)
	if path := os.Getenv(envReport); path != "" && cov != nil {
		report := "sessioncert contract coverage, " + tg.mode() + "\n\n" + cov.String()
		//nolint:gosec // G703: the operator names the report file; writing it is the point
		if err := os.WriteFile(path, []byte(report), 0o600); err != nil {
			t.Errorf("write the report: %v", err)
		}
	}
}

// TestContractExternalProcess proves the external mode: it starts
// sessioncert-server as a process and runs the scenario through the same
// environment variables an operator sets, with the in-process limits as
// flags so that no status is left out.
func TestContractExternalProcess(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and starts sessioncert-server")
	}
	p := servertest.StartProcess(t, "", inProcessFlags...)
	vars := map[string]string{
		envURL:       p.URL,
		envCA:        filepath.Join(p.DataDir, "pki", "ca-bundle.pem"),
		envAdminPass: servertest.AdminPassword,
	}
	tg, err := externalTarget(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	if tg == nil || !tg.external {
		t.Fatal("the variables did not select the external mode")
	}
	runScenario(t, tg)
}

// runScenario walks the scenario, logs the coverage table and fails on any
// declared response left uncovered. It returns nil when the walk stopped
// early.
func runScenario(t *testing.T, tg *target) *coverage {
	t.Helper()
	r := newRun(t, tg)
	t.Logf("contract run, %s, %d operations in the spec", tg.mode(), len(r.spec.ops))
	finished := r.walk(t)
	r.reportProblems(t)
	if !finished {
		return nil
	}
	cov := computeCoverage(r.spec, r.chk.seen(), r.notRun)
	t.Logf("coverage, %s:\n%s", tg.mode(), cov)
	for _, p := range cov.missing() {
		t.Errorf("%s %s is declared but no scenario reached it", p.op, statusText(p.status))
	}
	return cov
}
