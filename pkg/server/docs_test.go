package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-openapi/loads"

	"github.com/sessioncert/sessioncert/pkg/server/servertest"
	"github.com/sessioncert/sessioncert/restapi"
)

// requireChromiumEnv, set to 1, turns a missing Chromium from a skip into a
// failure; .ci/run sets it, so that CI cannot pass without the browser test.
const requireChromiumEnv = "SESSIONCERT_REQUIRE_CHROMIUM"

// chromium returns the path of a headless-capable Chromium, or skips (fails
// when requireChromiumEnv is 1).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(requireChromiumEnv) == "1" {
		t.Fatalf("chromium is not installed, and %s=1 requires it", requireChromiumEnv)
	}
	t.Skip("chromium is not installed; .ci/run installs Debian's chromium package")
	return ""
}

// specOperations returns the operation ids of the embedded spec, sorted.
func specOperations(t *testing.T) []string {
	t.Helper()
	doc, err := loads.Analyzed(restapi.SwaggerJSON, "")
	if err != nil {
		t.Fatal(err)
	}
	ops := doc.Analyzer.OperationIDs()
	sort.Strings(ops)
	if len(ops) < 10 {
		t.Fatalf("the spec has only %d operations: %v", len(ops), ops)
	}
	return ops
}

// externalRef finds what would make a browser load anything: a src or href
// that is not a fragment of the page itself, a CSS url() or @import.
var externalRef = regexp.MustCompile(`(?i)(\b(src|href)\s*=\s*["']?[^#"'\s>][^"'\s>]*|url\(|@import)`)

// checkSelfContained fails for every external reference in page.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	for _, ref := range externalRef.FindAllString(page, -1) {
		t.Errorf("the page references something outside itself: %s", ref)
	}
	if strings.Contains(strings.ToLower(page), "<script") {
		t.Error("the page has a script")
	}
}

// TestDocsPageServed fetches /docs as served: HTML that names every
// operation of the spec, references nothing outside itself, and is sent
// with a policy that forbids loading anything.
func TestDocsPageServed(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	resp, err := e.HTTP.Get(e.URL + "/docs")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q does not forbid loading", csp)
	}
	page := string(body)
	checkSelfContained(t, page)
	for _, op := range specOperations(t) {
		if !strings.Contains(page, `<strong class="opid">`+op+`</strong>`) {
			t.Errorf("operation %s is not on the page", op)
		}
	}
}

// TestDocsPageInChromium loads /docs in headless Chromium and checks that
// the rendered page shows every operation of the spec and references
// nothing outside itself.
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
	for _, op := range specOperations(t) {
		if !strings.Contains(dom, `<strong class="opid">`+op+`</strong>`) {
			t.Errorf("operation %s is not shown", op)
		}
	}
	checkSelfContained(t, dom)
}
