package app_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promoai/promo/registry/cli"
)

// The campaign walk-through of docs/campaigns.md through a running server:
// promoctl -server and the REST calls create, list, show, pause, update and
// read the history of the page's example campaign; only an admin may
// change it, an invalid campaign is refused field by field, a stale edit
// with a conflict.
func TestCampaignsThroughTheAPI(t *testing.T) {
	s := startServer(t, false)
	doc, err := os.ReadFile("../../docs/campaigns.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(doc), "```json\n")
	example, _, _ := strings.Cut(rest, "```")
	file := filepath.Join(t.TempDir(), "spring.json")
	os.WriteFile(file, []byte(example), 0o600)
	promoctl := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := cli.Main(context.Background(), append([]string{"-server", s.grpcAddr, "-token", adminToken}, args...), cli.Env{}, &out, &out)
		return out.String(), err
	}
	for _, st := range []struct {
		args []string
		want string
	}{
		{[]string{"campaigns", "create", "-file", file, "-reason", "spring plan"}, "campaign spring-sale is at revision 1 (active)"},
		{[]string{"campaigns", "list"}, "spring-sale  active  2027-03-01  2027-03-31  5000"},
		{[]string{"campaigns", "show", "spring-sale"}, `"revision": 1`},
		{[]string{"campaigns", "pause", "spring-sale", "-reason", "stock issue"}, "campaign spring-sale is paused (revision 2)"},
		{[]string{"campaigns", "history", "spring-sale"}, "ada"},
	} {
		out, err := promoctl(st.args...)
		if err != nil || !strings.Contains(out, st.want) {
			t.Fatalf("promoctl %s: %v\n%s\nwant %q", strings.Join(st.args, " "), err, out, st.want)
		}
	}

	call := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+s.httpAddr+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The page's JSON is a valid REST body as it is.
	autumn := strings.Replace(example, `"spring-sale"`, `"autumn-sale"`, 1)
	if code, body := call("POST", "/v1/campaigns", userToken, `{"campaign":`+autumn+`,"reason":"x"}`); code != http.StatusForbidden {
		t.Fatalf("create with a user token: %d %s", code, body)
	}
	if code, body := call("POST", "/v1/campaigns", adminToken, `{"campaign":`+autumn+`,"reason":"autumn plan"}`); code != http.StatusOK || !strings.Contains(body, `"revision":1`) {
		t.Fatalf("REST create: %d %s", code, body)
	}
	if code, body := call("GET", "/v1/campaigns", "", ""); code != http.StatusOK || !strings.Contains(body, "autumn-sale") || !strings.Contains(body, "spring-sale") {
		t.Fatalf("REST list: %d %s", code, body)
	}
	if code, body := call("POST", "/v1/campaigns/autumn-sale/pause", adminToken, `{"reason":"stock"}`); code != http.StatusOK || !strings.Contains(body, `"state":"paused"`) {
		t.Fatalf("REST pause: %d %s", code, body)
	}
	if code, body := call("GET", "/v1/campaigns/autumn-sale/history", "", ""); code != http.StatusOK || !strings.Contains(body, `"action":"pause"`) || !strings.Contains(body, `"actor":"ada"`) {
		t.Fatalf("REST history: %d %s", code, body)
	}
	// A stale edit is a conflict; an invalid campaign names its fields.
	if code, body := call("PUT", "/v1/campaigns/autumn-sale", adminToken, `{"campaign":`+autumn+`,"revision":1,"reason":"late"}`); code != http.StatusConflict || !strings.Contains(body, "revision 2") {
		t.Fatalf("stale REST update: %d %s", code, body)
	}
	bad := strings.Replace(strings.Replace(autumn, `"budget": 5000`, `"budget": 0`, 1), `"kind": "threshold"`, `"kind": "bogo"`, 1)
	bad = strings.Replace(bad, `"autumn-sale"`, `"winter-sale"`, 1)
	code, body := call("POST", "/v1/campaigns", adminToken, `{"campaign":`+bad+`,"reason":"x"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, `"field":"budget"`) || !strings.Contains(body, `"field":"offers[1].kind"`) {
		t.Fatalf("invalid REST create: %d %s", code, body)
	}
	os.WriteFile(file, []byte(bad), 0o600)
	if _, err := promoctl("campaigns", "create", "-file", file, "-reason", "x"); err == nil || !strings.Contains(err.Error(), "budget: 0 must be positive") {
		t.Fatalf("invalid promoctl create: %v", err)
	}
	if code, _ := call("GET", "/v1/campaigns/nope", "", ""); code != http.StatusNotFound {
		t.Fatalf("a missing campaign: %d", code)
	}
}
