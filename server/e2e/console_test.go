package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/registry/providers/fs"
)

// chromium finds a headless-capable Chromium; CI installs Debian's.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium on this CI machine: .ci/run installs Debian's chromium package")
	}
	t.Skip("no Chromium here (apt-get install -y chromium): the console's browser test is skipped")
	return ""
}

// artifacts is where the browser test leaves its screenshots:
// $PROMO_TEST_ARTIFACTS, or .artifacts/ at the repository root.
func artifacts(t *testing.T) string {
	dir := os.Getenv("PROMO_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), ".artifacts")
	}
	dir = filepath.Join(dir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The web console in headless Chromium against the real server binary and
// a real training run: the overview loads; neither an anonymous visitor
// nor a read token can promote; an admin's promote through the form
// changes the version the REST API serves; the run's report is shown with
// its plots; an admin pauses a campaign from its page. Screenshots of the
// overview, the model page, the campaign and the report are saved under
// artifacts(t).
func TestConsoleInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	browser := chromium(t)
	bin := buildBinaries(t, "./trainer/cmd/promo-trainer", "./server/cmd/promo-server")
	dir := filepath.Join(t.TempDir(), "registry")
	for _, args := range [][]string{{"-generate=tiny"}, {"-models=propensity", "-alias=staging"}} {
		out, err := exec.Command(filepath.Join(bin, "promo-trainer"), append([]string{"-store.dir=" + dir, "-once", "-gate.first-auc=0"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("promo-trainer %v: %v\n%s", args, err, out)
		}
	}
	bkt, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(bkt)
	ctx := context.Background()
	prod, err := reg.Alias(ctx, "propensity", "production")
	if err != nil {
		t.Fatal(err)
	}
	staging, err := reg.Alias(ctx, "propensity", "staging")
	if err != nil {
		t.Fatal(err)
	}
	admin := "e2e-console-admin-8b3f1d9a6c2e4f7015"
	srv := startServer(t, bin, os.Environ(), admin, "-store.dir="+dir, "-models.check-interval=200ms", "-shutdown.delay=100ms")
	base := "http://" + srv.httpAddr
	waitOK(t, base+"/readyz")
	served := func() string {
		resp, err := http.Post(base+"/v1/score", "application/json", strings.NewReader(`{"userId":"u1"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct{ Model struct{ Version string } }
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("score: %s", body)
		}
		return r.Model.Version
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1300, 1000))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	bctx, cancelTimeout := context.WithTimeout(bctx, 2*time.Minute)
	defer cancelTimeout()
	// The browser starts on the first call, and lives as long as that
	// call's context: start it on the test's own.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}
	out := artifacts(t)
	// Each step has 20 s: a selector that never matches fails the step,
	// not the whole test's budget.
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	get := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(bctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(out, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", filepath.Join(out, name))
	}
	// promote fills and sends the model page's promote form and returns
	// what the page then says.
	promote := func(reason string) string {
		do("promote through the form",
			chromedp.Navigate(base+"/ui/models/propensity"),
			chromedp.SetValue(chromedp.ID("promote-version"), staging.Version),
			chromedp.SendKeys(chromedp.ID("promote-reason"), reason),
			chromedp.Click(chromedp.ID("promote")),
			chromedp.WaitVisible(chromedp.CSS("#notice, #error")),
		)
		return get("the outcome", chromedp.Text(chromedp.CSS("#notice, #error")))
	}
	signIn := func(token string) {
		do("sign in",
			chromedp.Navigate(base+"/ui/login"),
			chromedp.SendKeys(chromedp.ID("token"), token),
			chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("notice")),
		)
	}

	do("overview", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.ID("serving")))
	serving := get("the serving table", chromedp.Text(chromedp.ID("serving")))
	shot("overview.png")
	if !strings.Contains(serving, "propensity") || !strings.Contains(serving, prod.Version) {
		t.Fatalf("the overview's serving table:\n%s", serving)
	}
	if msg := promote("anonymous try"); !strings.Contains(msg, "admin token") {
		t.Fatalf("an anonymous promote: %q", msg)
	}
	signIn(readerToken)
	if msg := promote("reader try"); !strings.Contains(msg, "admin token") {
		t.Fatalf("a read token's promote: %q", msg)
	}
	if v := served(); v != prod.Version {
		t.Fatalf("after refused promotes the API serves %s, want %s", v, prod.Version)
	}
	do("sign out", chromedp.Navigate(base+"/ui/"), chromedp.Click(chromedp.CSS("header button")), chromedp.WaitVisible(chromedp.ID("notice")))
	signIn(admin)
	if msg := promote("browser test: staging is better"); !strings.Contains(msg, "promote propensity/production: "+prod.Version+" → "+staging.Version) {
		t.Fatalf("an admin's promote: %q", msg)
	}
	shot("model.png")
	for deadline := time.Now().Add(10 * time.Second); served() != staging.Version; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the API still serves %s 10 s after the promote through the console", served())
		}
	}
	h, err := reg.History(ctx, "propensity", "production")
	if err != nil || h[0].Actor != "e2e" || h[0].Reason != "browser test: staging is better" {
		t.Fatalf("history after the console's promote: %+v %v", h[0], err)
	}

	// A campaign, paused through its page.
	if _, err := campaign.NewStore(bkt).Create(ctx, campaign.Campaign{ID: "spring-sale", Name: "Spring sale",
		Start: time.Now().Add(-time.Hour), End: time.Now().Add(30 * 24 * time.Hour), Budget: 5000, DailyCap: 300, HoldoutShare: 0.1,
		Offers: []campaign.Offer{{ID: "pct10", Kind: campaign.KindPercent, Arm: "pct10", PercentOff: 10}}}, "e2e", "spring plan"); err != nil {
		t.Fatal(err)
	}
	do("pause a campaign",
		chromedp.Navigate(base+"/ui/campaigns/"),
		chromedp.Click(chromedp.CSS(`#campaigns a`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="reason"]`), "stock issue"),
		chromedp.Click(chromedp.ID("pause")),
		chromedp.WaitVisible(chromedp.ID("notice")),
	)
	if msg := get("the outcome", chromedp.Text(chromedp.ID("notice"))); !strings.Contains(msg, "campaign spring-sale is paused (revision 2)") {
		t.Fatalf("pausing a campaign: %q", msg)
	}
	shot("campaign.png")

	// The run's report, from the version page's link, with its plots.
	do("report",
		chromedp.Navigate(base+"/ui/models/propensity/versions/"+staging.Version),
		chromedp.Click(chromedp.ID("report")),
		chromedp.WaitReady(chromedp.CSS("img")),
	)
	loaded, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.images.length > 0 && Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)`,
		chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil || !loaded {
		t.Fatalf("the report's plots did not load: %v", err)
	}
	shot("report.png")
}
