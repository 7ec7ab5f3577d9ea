package server_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sessioncert/sessioncert/pkg/server/servertest"
)

// chromium returns the path of a headless-capable Chromium, or skips.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed; .ci/run installs Debian's chromium package")
	return ""
}

// TestDocsPageInChromium loads /docs in headless Chromium and checks that
// the rendered page shows every operation of the spec.
func TestDocsPageInChromium(t *testing.T) {
	bin := chromium(t)
	e := servertest.Start(t, servertest.Options{})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The flags keep Chromium off the network: only the test server is
	// reachable, and the page must need nothing else.
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--ignore-certificate-errors", "--virtual-time-budget=5000",
		"--dump-dom", e.URL+"/docs")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	if !strings.Contains(dom, "sessioncert API reference") {
		t.Fatalf("page title missing from the rendered DOM (%d bytes)", len(dom))
	}
	for _, op := range []string{
		"authenticate", "getCurrentAPISession", "deleteCurrentAPISession", "listVersion",
		"createCurrentApiSessionCertificate", "listCurrentApiSessionCertificates",
		"detailCurrentApiSessionCertificate", "deleteCurrentApiSessionCertificate",
		"createIdentity", "listAPISessions", "createAdmission", "listEvents", "createHeartbeat",
		"listHealthChecks",
	} {
		if !strings.Contains(dom, `<strong class="opid">`+op+`</strong>`) {
			t.Errorf("operation %s is not shown", op)
		}
	}
	if strings.Contains(dom, "<script") {
		t.Error("the page has a script")
	}
}
