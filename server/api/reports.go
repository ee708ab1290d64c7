package api

import (
	"context"
	"path"
	"regexp"
	"slices"
	"strings"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
)

// Reports serves the training run reports the trainer publishes under
// reports/RUN/ in the store.
type Reports struct {
	promov1.UnimplementedReportServiceServer
	Bucket registry.Bucket
}

const reportsDir = "reports/"

// MaxReportFileBytes bounds one report file read through the API: a
// report's page and plots are well under it.
const MaxReportFileBytes = 16 << 20

var (
	runRE      = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z$`)
	reportFile = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	// Only what the trainer writes is served, each with its own type, so
	// a stray object cannot be served as a page.
	reportTypes = map[string]string{".html": "text/html; charset=utf-8", ".png": "image/png", ".json": "application/json", ".csv": "text/csv; charset=utf-8"}
)

// ListReports implements promov1.ReportServiceServer.
func (s *Reports) ListReports(ctx context.Context, req *promov1.ListReportsRequest) (*promov1.ListReportsResponse, error) {
	limit := int(req.GetLimit())
	if limit < 0 || limit > 1000 {
		return nil, invalidf("limit must be between 0 and 1000")
	}
	if limit == 0 {
		limit = 50
	}
	objects, err := s.Bucket.List(ctx, reportsDir, true)
	if err != nil {
		return nil, ToStatus(err)
	}
	files := map[string][]string{}
	for _, o := range objects {
		run, name, ok := strings.Cut(strings.TrimPrefix(o, reportsDir), "/")
		if ok && runRE.MatchString(run) && reportFile.MatchString(name) {
			files[run] = append(files[run], name)
		}
	}
	runs := make([]string, 0, len(files))
	for r := range files {
		runs = append(runs, r)
	}
	slices.Sort(runs)
	slices.Reverse(runs)
	resp := &promov1.ListReportsResponse{}
	for _, r := range runs[:min(limit, len(runs))] {
		slices.Sort(files[r])
		resp.Reports = append(resp.Reports, &promov1.ReportSummary{Run: r, Files: files[r]})
	}
	return resp, nil
}

// GetReportFile implements promov1.ReportServiceServer.
func (s *Reports) GetReportFile(ctx context.Context, req *promov1.GetReportFileRequest) (*promov1.GetReportFileResponse, error) {
	if !runRE.MatchString(req.GetRun()) {
		return nil, invalidf("run %q is not a report run (e.g. 20261206T050712Z)", req.GetRun())
	}
	ctype, ok := reportTypes[path.Ext(req.GetName())]
	if !reportFile.MatchString(req.GetName()) || !ok {
		return nil, invalidf("name %q is not a report file (a .html, .png, .json or .csv name without a folder)", req.GetName())
	}
	name := reportsDir + req.GetRun() + "/" + req.GetName()
	attrs, err := s.Bucket.Attributes(ctx, name)
	if err != nil {
		return nil, ToStatus(err)
	}
	if attrs.Size > MaxReportFileBytes {
		return nil, invalidf("%s has %d bytes, more than the %d a report file may have", req.GetName(), attrs.Size, MaxReportFileBytes)
	}
	data, err := registry.ReadAll(ctx, s.Bucket, name)
	if err != nil {
		return nil, ToStatus(err)
	}
	return &promov1.GetReportFileResponse{ContentType: ctype, Content: data}, nil
}
