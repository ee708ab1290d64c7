package console

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
)

type overviewData struct {
	Status  *promov1.GetStatusResponse
	Models  []*promov1.ModelSummary
	Reports []*promov1.ReportSummary
	Live    []Figure
}

// overview: what is serving, the models, the latest reports.
func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := sessionOf(r).ctx(r)
	defer cancel()
	st, err := c.status.GetStatus(ctx, &promov1.GetStatusRequest{})
	if err != nil {
		c.fail(w, r, "serving status", err)
		return
	}
	models, err := c.reg.ListModels(ctx, &promov1.ListModelsRequest{})
	if err != nil {
		c.fail(w, r, "models", err)
		return
	}
	reports, err := c.reports.ListReports(ctx, &promov1.ListReportsRequest{Limit: 5})
	if err != nil {
		c.fail(w, r, "reports", err)
		return
	}
	d := overviewData{Status: st, Models: models.GetModels(), Reports: reports.GetReports()}
	if c.opts.Live != nil {
		d.Live = c.opts.Live()
	}
	c.render(w, r, http.StatusOK, "overview.html", page{Title: "Serving", Data: d})
}

type aliasRow struct {
	Alias, Version string
	Share          float64
}

type versionRow struct {
	Version, Created string
	Metrics          []Figure
	Aliases          []string
}

type modelData struct {
	Name     string
	Aliases  []aliasRow
	Versions []versionRow
	// Histories of the production, canary and shadow aliases, newest
	// first.
	Histories map[string][]*promov1.AliasChange
	Canary    bool
	Shadow    bool
}

func (c *Console) model(w http.ResponseWriter, r *http.Request) {
	c.modelPage(w, r, http.StatusOK, "", "")
}

// modelPage shows a model: its aliases, the actions, its versions and
// alias histories; code, notice and problem come from an action.
func (c *Console) modelPage(w http.ResponseWriter, r *http.Request, code int, notice, problem string) {
	name := r.PathValue("model")
	ctx, cancel := sessionOf(r).ctx(r)
	defer cancel()
	// After a refused action, its refusal is what the page must say, even
	// when the model cannot be shown.
	fail := func(what string, err error) {
		if problem != "" {
			c.render(w, r, code, "error.html", page{Title: "Error", Error: problem})
			return
		}
		c.fail(w, r, what, err)
	}
	models, err := c.reg.ListModels(ctx, &promov1.ListModelsRequest{})
	if err != nil {
		fail("models", err)
		return
	}
	var sum *promov1.ModelSummary
	for _, m := range models.GetModels() {
		if m.GetName() == name {
			sum = m
		}
	}
	if sum == nil {
		c.render(w, r, http.StatusNotFound, "error.html", page{Title: "Error", Error: "no model named " + name})
		return
	}
	vs, err := c.reg.ListVersions(ctx, &promov1.ListVersionsRequest{Model: name, PageSize: 50})
	if err != nil {
		fail("versions", err)
		return
	}
	d := modelData{Name: name, Histories: map[string][]*promov1.AliasChange{}}
	for _, a := range slices.Sorted(maps.Keys(sum.GetAliases())) {
		row := aliasRow{Alias: a, Version: sum.GetAliases()[a]}
		if a == registry.AliasCanary {
			row.Share, d.Canary = sum.GetCanaryShare(), true
		}
		d.Shadow = d.Shadow || a == registry.AliasShadow
		d.Aliases = append(d.Aliases, row)
	}
	for _, v := range vs.GetVersions() {
		d.Versions = append(d.Versions, versionRow{Version: v.GetVersion(), Created: when(v.GetCreatedAt()), Metrics: keyMetrics(v.GetMetrics()), Aliases: v.GetAliases()})
	}
	for _, a := range []string{"production", registry.AliasCanary, registry.AliasShadow} {
		h, err := c.reg.History(ctx, &promov1.HistoryRequest{Model: name, Alias: a, Limit: 10})
		if notFound(err) {
			continue
		}
		if err != nil {
			fail("history", err)
			return
		}
		d.Histories[a] = h.GetChanges()
	}
	c.render(w, r, code, "model.html", page{Title: name, Notice: notice, Error: problem, Data: d})
}

type versionData struct {
	Manifest *promov1.Manifest
	Aliases  []string
	Metrics  []Figure
	Params   []Figure
	Report   string // the run's report folder under /ui/reports/, if any
}

func (c *Console) version(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := sessionOf(r).ctx(r)
	defer cancel()
	resp, err := c.reg.GetVersion(ctx, &promov1.GetVersionRequest{Model: r.PathValue("model"), Version: r.PathValue("version")})
	if err != nil {
		c.fail(w, r, "version", err)
		return
	}
	m := resp.GetManifest()
	d := versionData{Manifest: m, Aliases: resp.GetAliases()}
	for _, k := range slices.Sorted(maps.Keys(m.GetMetrics())) {
		d.Metrics = append(d.Metrics, Figure{k, num(m.GetMetrics()[k])})
	}
	for _, k := range slices.Sorted(maps.Keys(m.GetParams())) {
		if k == "report" {
			// "reports/RUN/index.html": the run's folder.
			d.Report, _, _ = strings.Cut(strings.TrimPrefix(m.GetParams()[k], "reports/"), "/")
			continue
		}
		d.Params = append(d.Params, Figure{k, m.GetParams()[k]})
	}
	c.render(w, r, http.StatusOK, "version.html", page{Title: m.GetModel() + " " + m.GetVersion(), Data: d})
}

func (c *Console) reportList(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := sessionOf(r).ctx(r)
	defer cancel()
	resp, err := c.reports.ListReports(ctx, &promov1.ListReportsRequest{Limit: 200})
	if err != nil {
		c.fail(w, r, "reports", err)
		return
	}
	c.render(w, r, http.StatusOK, "reports.html", page{Title: "Reports", Data: resp.GetReports()})
}

// reportFile serves a report's page or plot from the store as it is.
func (c *Console) reportFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "" {
		name = "index.html"
	}
	ctx, cancel := sessionOf(r).ctx(r)
	defer cancel()
	resp, err := c.reports.GetReportFile(ctx, &promov1.GetReportFileRequest{Run: r.PathValue("run"), Name: name})
	if err != nil {
		c.fail(w, r, "report", err)
		return
	}
	w.Header().Set("Content-Type", resp.GetContentType())
	_, _ = w.Write(resp.GetContent())
}
