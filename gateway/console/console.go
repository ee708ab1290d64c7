// Package console is the web console under /ui/: what is serving, the
// models with their aliases, versions, metrics and history, the training
// run reports, the promotion campaigns, and the promote, rollback, canary,
// shadow and campaign pause/resume/end actions.
//
// It is server-rendered HTML over the same gRPC API the REST gateway
// uses, so it runs in promo-server and in the standalone gateway alike and
// the server's own authorization decides: the token a person signs in with
// travels as the bearer token of every call, a read token can look, only
// an admin token can act, and every action needs a reason for the alias
// history. The token is kept in an HttpOnly, SameSite=Strict cookie;
// forms carry a token derived from it and cross-origin posts are refused.
package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
)

// Figure is one live serving figure for the overview page.
type Figure struct {
	Name, Value string
}

// Options configure the console.
type Options struct {
	// Live, when set, gives the process's own serving figures (request
	// rates, errors, latency) for the overview page.
	Live func() []Figure
}

// Prefix is where the console is served.
const Prefix = "/ui/"

const cookieName = "promo_console_token"

// callTimeout bounds each API call a page makes.
const callTimeout = 10 * time.Second

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"num":   num,
	"pct":   func(v float64) string { return strconv.FormatFloat(100*v, 'f', 0, 64) + "%" },
	"when":  when,
	"us":    func(s float64) string { return strconv.FormatFloat(1e6*s, 'f', 0, 64) + " µs" },
	"path":  url.PathEscape,
	"join":  strings.Join,
	"isOne": func(s []string) bool { return len(s) == 1 },
}).ParseFS(templateFS, "templates/*.html"))

func when(t interface{ AsTime() time.Time }) string {
	if t == nil {
		return ""
	}
	tt := t.AsTime()
	if tt.IsZero() || tt.Unix() == 0 {
		return ""
	}
	return tt.UTC().Format("2006-01-02 15:04:05Z")
}

// Console serves the pages.
type Console struct {
	reg       promov1.RegistryServiceClient
	status    promov1.StatusServiceClient
	reports   promov1.ReportServiceClient
	campaigns promov1.CampaignServiceClient
	opts      Options
}

// New returns the console's handler for requests under Prefix, making its
// calls over conn.
func New(conn grpc.ClientConnInterface, o Options) http.Handler {
	c := &Console{reg: promov1.NewRegistryServiceClient(conn), status: promov1.NewStatusServiceClient(conn),
		reports: promov1.NewReportServiceClient(conn), campaigns: promov1.NewCampaignServiceClient(conn), opts: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/{$}", c.overview)
	mux.HandleFunc("GET /ui/login", c.loginPage)
	mux.HandleFunc("POST /ui/login", c.login)
	mux.HandleFunc("POST /ui/logout", c.logout)
	mux.HandleFunc("GET /ui/models/{model}", c.model)
	mux.HandleFunc("POST /ui/models/{model}", c.act)
	mux.HandleFunc("GET /ui/models/{model}/versions/{version}", c.version)
	mux.HandleFunc("GET /ui/campaigns/{$}", c.campaignList)
	mux.HandleFunc("GET /ui/campaigns/{id}", c.campaign)
	mux.HandleFunc("POST /ui/campaigns/{id}", c.campaignAct)
	mux.HandleFunc("GET /ui/reports/{$}", c.reportList)
	mux.HandleFunc("GET /ui/reports/{run}/{$}", c.reportFile)
	mux.HandleFunc("GET /ui/reports/{run}/{name}", c.reportFile)
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, Prefix, http.StatusMovedPermanently) })
	return secureHeaders(mux)
}

// secureHeaders keeps the pages from being framed or sniffed and runs no
// script at all: the console is forms and links.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// session is who is looking: their token (empty: anonymous) and the form
// token derived from it.
type session struct {
	token, csrf string
}

func sessionOf(r *http.Request) session {
	s := session{}
	if ck, err := r.Cookie(cookieName); err == nil {
		s.token = ck.Value
	}
	sum := sha256.Sum256([]byte("promo-console-form\x00" + s.token))
	s.csrf = hex.EncodeToString(sum[:16])
	return s
}

// ctx is the context of the API calls made for r: r's, with the
// session's token as the bearer token and a timeout.
func (s session) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	ctx := r.Context()
	if s.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.token)
	}
	if id := r.Header.Get("X-Request-Id"); id != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", id)
	}
	return context.WithTimeout(ctx, callTimeout)
}

// page is what every template gets.
type page struct {
	Title    string
	SignedIn bool
	CSRF     string
	Notice   string
	Error    string
	Data     any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	s := sessionOf(r)
	p.SignedIn, p.CSRF = s.token != "", s.csrf
	if p.Notice == "" {
		p.Notice = r.URL.Query().Get("done")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := pages.ExecuteTemplate(w, name, p); err != nil {
		fmt.Fprintf(w, "<p>page error: %s</p>", template.HTMLEscapeString(err.Error()))
	}
}

// fail shows an API error on the error page with its HTTP status: an
// unauthenticated caller is invited to sign in.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	st := status.Convert(err)
	msg := fmt.Sprintf("%s: %s", what, st.Message())
	switch st.Code() {
	case codes.Unauthenticated:
		msg += " — sign in with a token"
	case codes.PermissionDenied:
		msg += " — this needs an admin token"
	}
	c.render(w, r, runtime.HTTPStatusFromCode(st.Code()), "error.html", page{Title: "Error", Error: msg})
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login.html", page{Title: "Sign in"})
}

// login keeps the token in a cookie once the API accepts it.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-origin form refused", http.StatusForbidden)
		return
	}
	tok := strings.TrimSpace(r.PostFormValue("token"))
	if tok == "" || len(tok) > 512 || strings.ContainsAny(tok, "\r\n;, ") {
		c.render(w, r, http.StatusBadRequest, "login.html", page{Title: "Sign in", Error: "paste the API token (one line, no spaces)"})
		return
	}
	ctx, cancel := session{token: tok}.ctx(r)
	defer cancel()
	if _, err := c.reg.ListModels(ctx, &promov1.ListModelsRequest{}); status.Code(err) == codes.Unauthenticated {
		c.render(w, r, http.StatusUnauthorized, "login.html", page{Title: "Sign in", Error: "the server does not accept this token"})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: Prefix, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: 12 * 3600})
	http.Redirect(w, r, Prefix+"?done="+url.QueryEscape("signed in"), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if !c.formOK(w, r) {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, Prefix+"?done="+url.QueryEscape("signed out"), http.StatusSeeOther)
}

// sameOrigin refuses a form posted from another site (a browser sends
// Origin on every POST).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// formOK checks a posted form's origin and form token.
func (c *Console) formOK(w http.ResponseWriter, r *http.Request) bool {
	if !sameOrigin(r) {
		http.Error(w, "cross-origin form refused", http.StatusForbidden)
		return false
	}
	want := sessionOf(r).csrf
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(want)) != 1 {
		c.render(w, r, http.StatusForbidden, "error.html", page{Title: "Error", Error: "the form is out of date (signed in or out since it was shown): reload the page and try again"})
		return false
	}
	return true
}

// Actions on a model's aliases.
const (
	actPromote       = "promote"
	actRollback      = "rollback"
	actCanary        = "canary"
	actCanaryClear   = "canary-clear"
	actPromoteCanary = "promote-canary"
	actShadow        = "shadow"
	actShadowClear   = "shadow-clear"
)

// act runs one action from the model page and shows the page again with
// what happened.
func (c *Console) act(w http.ResponseWriter, r *http.Request) {
	if !c.formOK(w, r) {
		return
	}
	model := r.PathValue("model")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	version := r.PostFormValue("version")
	alias := r.PostFormValue("alias")
	if alias == "" {
		alias = "production"
	}
	if reason == "" {
		c.modelPage(w, r, http.StatusBadRequest, "", "give a reason: it is recorded in the alias history")
		return
	}
	ctx, cancel := sessionOf(r).ctx(r)
	defer cancel()
	var ch *promov1.AliasChange
	var err error
	switch r.PostFormValue("action") {
	case actPromote:
		var resp *promov1.PromoteResponse
		resp, err = c.reg.Promote(ctx, &promov1.PromoteRequest{Model: model, Alias: alias, Version: version, Reason: reason})
		ch = resp.GetChange()
	case actRollback:
		var resp *promov1.RollbackResponse
		resp, err = c.reg.Rollback(ctx, &promov1.RollbackRequest{Model: model, Alias: alias, Reason: reason})
		ch = resp.GetChange()
	case actCanary:
		share, perr := strconv.ParseFloat(r.PostFormValue("share"), 64)
		if perr != nil {
			c.modelPage(w, r, http.StatusBadRequest, "", "the canary's share is a number between 0 and 1, e.g. 0.2")
			return
		}
		var resp *promov1.SetCanaryResponse
		resp, err = c.reg.SetCanary(ctx, &promov1.SetCanaryRequest{Model: model, Version: version, Share: share, Reason: reason})
		ch = resp.GetChange()
	case actPromoteCanary:
		var resp *promov1.PromoteCanaryResponse
		resp, err = c.reg.PromoteCanary(ctx, &promov1.PromoteCanaryRequest{Model: model, Alias: alias, Reason: reason})
		ch = resp.GetChange()
	case actShadow:
		var resp *promov1.SetShadowResponse
		resp, err = c.reg.SetShadow(ctx, &promov1.SetShadowRequest{Model: model, Version: version, Reason: reason})
		ch = resp.GetChange()
	case actCanaryClear, actShadowClear:
		var resp *promov1.ClearAliasResponse
		trial := strings.TrimSuffix(r.PostFormValue("action"), "-clear")
		resp, err = c.reg.ClearAlias(ctx, &promov1.ClearAliasRequest{Model: model, Alias: trial, Reason: reason})
		ch = resp.GetChange()
	default:
		c.modelPage(w, r, http.StatusBadRequest, "", fmt.Sprintf("unknown action %q", r.PostFormValue("action")))
		return
	}
	if err != nil {
		code, msg := refusal(err, "moving an alias")
		c.modelPage(w, r, code, "", msg)
		return
	}
	done := fmt.Sprintf("%s %s/%s: %s → %s", ch.GetAction(), ch.GetModel(), ch.GetAlias(), orUnset(ch.GetFromVersion()), orUnset(ch.GetToVersion()))
	if ch.GetShare() > 0 {
		done += fmt.Sprintf(" for %.0f%% of shoppers", 100*ch.GetShare())
	}
	http.Redirect(w, r, Prefix+"models/"+url.PathEscape(model)+"?done="+url.QueryEscape(done), http.StatusSeeOther)
}

// refusal is the HTTP status and the message for a refused action (what:
// "moving an alias"): one without the right token says which it needs.
func refusal(err error, what string) (int, string) {
	st := status.Convert(err)
	msg := st.Message()
	if st.Code() == codes.PermissionDenied || st.Code() == codes.Unauthenticated {
		msg = "refused: " + msg + " — " + what + " needs an admin token"
	}
	return runtime.HTTPStatusFromCode(st.Code()), msg
}

func orUnset(v string) string {
	if v == "" {
		return "(unset)"
	}
	return v
}

// notFound reports whether err is the API's NotFound.
func notFound(err error) bool { return status.Code(err) == codes.NotFound }

// keyMetrics picks a version's key metrics in registry.KeyMetrics order.
func keyMetrics(m map[string]float64) []Figure {
	var out []Figure
	for _, k := range registry.KeyMetrics {
		if v, ok := m[k]; ok {
			out = append(out, Figure{k, num(v)})
		}
	}
	return out
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
