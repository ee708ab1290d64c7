// Package cli is promoctl, the command-line tool ML engineers use to list,
// inspect, compare, promote and roll back model versions. It talks to a
// registry store directly (local folder or S3) or to a running server's
// admin API over gRPC.
//
//	promoctl [-store.dir DIR | -store.type s3 ... | -server HOST:PORT] COMMAND [ARGS]
//
// Commands: models, versions MODEL, show MODEL VERSION, diff MODEL V1 V2,
// promote MODEL VERSION, rollback MODEL, history MODEL, prune MODEL, and
// campaigns (list, show, create, update, pause, resume, end, history).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/user"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/registry/client"
)

const usage = `usage: promoctl [flags] COMMAND [ARGS]

commands:
  models                        list models, their aliases and latest version
  versions MODEL                list versions, newest first, with key metrics
  show MODEL VERSION            print a version's manifest (metrics, params, blobs)
  diff MODEL V1 V2              compare two versions' metrics side by side
  promote MODEL VERSION         point -alias at VERSION (needs -reason)
  rollback MODEL                point -alias back at its previous version
  history MODEL                 alias history, newest first
  prune MODEL                   delete old versions (store mode only)
  canary set MODEL VERSION      answer -share of shoppers with VERSION (needs -reason)
  canary clear MODEL            production answers everyone again (needs -reason)
  promote-canary MODEL          move -alias to the canary's version and clear the canary (needs -reason)
  shadow set MODEL VERSION      compare VERSION with production off the request path (needs -reason)
  shadow clear MODEL            stop comparing (needs -reason)
  campaigns ...                 promotion campaigns: list, show,
                                create, update, pause, resume, end, history

flags:
`

// Env is what promoctl takes from its environment; main reads it.
type Env struct {
	// Token ($PROMO_TOKEN) is the bearer token for -server when -token
	// is not given.
	Token string
}

// Main runs promoctl.
func Main(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("promoctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	var store client.Config
	store.RegisterFlags(fs, "store.")
	server := fs.String("server", "", "server gRPC address (instead of a store), e.g. 127.0.0.1:9090")
	token := fs.String("token", "", "bearer token for -server (default $PROMO_TOKEN; -token-file keeps it out of the process list)")
	tokenFile := fs.String("token-file", "", "file whose first line is the bearer token for -server")
	useTLS := fs.Bool("tls", false, "use TLS to reach -server")
	caFile := fs.String("tls.ca", "", "CA bundle (PEM) to verify -server with (default: the system's roots; implies -tls)")
	alias := fs.String("alias", "production", "alias for promote, rollback and history")
	reason := fs.String("reason", "", "why (recorded in the alias history)")
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	keep := fs.Int("keep", 20, "prune: versions to keep")
	protect := fs.Int("protect-history", 10, "prune: never delete versions in an alias's last N history entries")
	file := fs.String("file", "", "campaigns create/update: the campaign's JSON")
	share := fs.Float64("share", 0, "canary set: share of shoppers the canary answers, within (0, 1)")
	revision := fs.Int("revision", 0, "campaigns update: the revision the edit was made on")
	// Flags may come before or after the command and its arguments
	// ("promote MODEL VERSION -reason ..."), as the README shows.
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(rest) == 0 {
		fs.Usage()
		return errors.New("no command given")
	}
	var be Backend
	var reg *registry.Registry
	var campaignStore campaignBackend
	if *server != "" {
		tok := *token
		if *tokenFile != "" {
			data, err := os.ReadFile(*tokenFile)
			if err != nil {
				return fmt.Errorf("-token-file: %w", err)
			}
			tok, _, _ = strings.Cut(strings.TrimSpace(string(data)), "\n")
			tok = strings.TrimSpace(tok)
		}
		if tok == "" {
			tok = env.Token
		}
		rb, err := dialServer(*server, tok, *useTLS || *caFile != "", *caFile)
		if err != nil {
			return err
		}
		defer rb.conn.Close()
		be, campaignStore = rb, serverCampaigns{rb}
	} else {
		if store.Type == "" || (store.Type == client.FS && store.Dir == "") {
			if store.Dir == "" {
				store.Dir = "./var/registry"
			}
		}
		bkt, err := client.NewBucket(ctx, store)
		if err != nil {
			return err
		}
		defer bkt.Close()
		reg = registry.New(bkt, registry.WithVerifier(artifact.Verify))
		be = &storeBackend{reg: reg, actor: actor()}
		campaignStore = storeCampaigns{campaign.NewStore(bkt), actor()}
	}
	need := func(n int, what string) error {
		if len(rest)-1 != n {
			return fmt.Errorf("%s: want %s", rest[0], what)
		}
		return nil
	}
	out := &printer{w: stdout, json: *asJSON}
	switch rest[0] {
	case "models":
		ms, err := be.Models(ctx)
		if err != nil {
			return err
		}
		return out.models(ms)
	case "versions":
		if err := need(1, "MODEL"); err != nil {
			return err
		}
		vs, aliases, err := be.Versions(ctx, rest[1])
		if err != nil {
			return err
		}
		return out.versions(vs, aliases)
	case "show":
		if err := need(2, "MODEL VERSION"); err != nil {
			return err
		}
		m, err := be.Manifest(ctx, rest[1], rest[2])
		if err != nil {
			return err
		}
		return out.manifest(m)
	case "diff":
		if err := need(3, "MODEL V1 V2"); err != nil {
			return err
		}
		a, err := be.Manifest(ctx, rest[1], rest[2])
		if err != nil {
			return err
		}
		b, err := be.Manifest(ctx, rest[1], rest[3])
		if err != nil {
			return err
		}
		return out.diff(a, b)
	case "promote":
		if err := need(2, "MODEL VERSION"); err != nil {
			return err
		}
		if *reason == "" {
			return errors.New("promote: give a -reason; it is recorded in the alias history")
		}
		ch, err := be.Promote(ctx, rest[1], *alias, rest[2], *reason)
		if err != nil {
			return err
		}
		return out.change(ch)
	case "rollback":
		if err := need(1, "MODEL"); err != nil {
			return err
		}
		if *reason == "" {
			return errors.New("rollback: give a -reason; it is recorded in the alias history")
		}
		ch, err := be.Rollback(ctx, rest[1], *alias, *reason)
		if err != nil {
			return err
		}
		return out.change(ch)
	case "history":
		if err := need(1, "MODEL"); err != nil {
			return err
		}
		h, err := be.History(ctx, rest[1], *alias)
		if err != nil {
			return err
		}
		return out.history(h)
	case "canary", "promote-canary", "shadow":
		if *reason == "" {
			return fmt.Errorf("%s: give a -reason; it is recorded in the alias history", rest[0])
		}
		var ch registry.AliasChange
		var err error
		switch {
		case rest[0] == "promote-canary" && len(rest) == 2:
			ch, err = be.PromoteCanary(ctx, rest[1], *alias, *reason)
		case rest[0] == "canary" && len(rest) == 4 && rest[1] == "set":
			ch, err = be.SetCanary(ctx, rest[2], rest[3], *share, *reason)
		case rest[0] == "shadow" && len(rest) == 4 && rest[1] == "set":
			ch, err = be.SetShadow(ctx, rest[2], rest[3], *reason)
		case rest[0] != "promote-canary" && len(rest) == 3 && rest[1] == "clear":
			ch, err = be.Clear(ctx, rest[2], rest[0], *reason)
		default:
			return fmt.Errorf("want: canary set MODEL VERSION -share S, canary clear MODEL, promote-canary MODEL, shadow set MODEL VERSION or shadow clear MODEL")
		}
		if err != nil {
			return err
		}
		return out.change(ch)
	case "campaigns":
		return campaigns(ctx, campaignStore, rest[1:], campaignArgs{file: *file, revision: *revision, reason: *reason}, out)
	case "prune":
		if err := need(1, "MODEL"); err != nil {
			return err
		}
		if reg == nil {
			return errors.New("prune works on a store (-store.*), not through -server")
		}
		deleted, err := reg.Prune(ctx, rest[1], *keep, *protect)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %d versions: %s\n", len(deleted), strings.Join(deleted, " "))
		return nil
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", rest[0])
}

func actor() string {
	if u, err := user.Current(); err == nil {
		h, _ := os.Hostname()
		return u.Username + "@" + h
	}
	return "promoctl"
}

type printer struct {
	w    io.Writer
	json bool
}

func (p *printer) emit(v any) error {
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (p *printer) table() *tabwriter.Writer { return tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0) }

func (p *printer) models(ms []ModelInfo) error {
	if p.json {
		return p.emit(ms)
	}
	t := p.table()
	fmt.Fprintln(t, "MODEL\tKIND\tVERSIONS\tLATEST\tALIASES")
	for _, m := range ms {
		var al []string
		for _, a := range slices.Sorted(maps.Keys(m.Aliases)) {
			al = append(al, a+"="+m.Aliases[a])
		}
		fmt.Fprintf(t, "%s\t%s\t%d\t%s\t%s\n", m.Name, m.Kind, m.Versions, m.Latest, strings.Join(al, " "))
	}
	return t.Flush()
}

// keyMetrics picks the headline metrics of a manifest.
func keyMetrics(m map[string]float64) string {
	var parts []string
	for _, k := range registry.KeyMetrics {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.4g", k, v))
		}
	}
	return strings.Join(parts, " ")
}

func (p *printer) versions(vs []*registry.Manifest, aliases map[string]string) error {
	if p.json {
		return p.emit(map[string]any{"versions": vs, "aliases": aliases})
	}
	byVersion := map[string][]string{}
	for a, v := range aliases {
		byVersion[v] = append(byVersion[v], a)
	}
	t := p.table()
	fmt.Fprintln(t, "VERSION\tCREATED\tSTATUS\tALIASES\tMETRICS")
	for _, m := range vs {
		sort.Strings(byVersion[m.Version])
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\n", m.Version, m.CreatedAt.Format(time.DateTime), m.Status, strings.Join(byVersion[m.Version], ","), keyMetrics(m.Metrics))
	}
	return t.Flush()
}

func (p *printer) manifest(m *registry.Manifest) error {
	if p.json {
		return p.emit(m)
	}
	fmt.Fprintf(p.w, "model:        %s\nversion:      %s\nkind:         %s\ncreated:      %s\nstatus:       %s  %s\ntrainer:      %s\ndata:         %s  %s .. %s\ninputs:       %s\n",
		m.Model, m.Version, m.Kind, m.CreatedAt.Format(time.RFC3339), m.Status, m.StatusReason, m.TrainerRevision,
		m.DataFingerprint, m.DataWindow.Start.Format(time.DateOnly), m.DataWindow.End.Format(time.DateOnly), strings.Join(m.InputSchema, ", "))
	t := p.table()
	fmt.Fprintln(t, "\nMETRIC\tVALUE")
	for _, k := range slices.Sorted(maps.Keys(m.Metrics)) {
		fmt.Fprintf(t, "%s\t%.6g\n", k, m.Metrics[k])
	}
	fmt.Fprintln(t, "\nPARAM\tVALUE")
	for _, k := range slices.Sorted(maps.Keys(m.Params)) {
		fmt.Fprintf(t, "%s\t%s\n", k, m.Params[k])
	}
	fmt.Fprintln(t, "\nBLOB\tBYTES\tSHA256")
	for _, b := range m.Blobs {
		fmt.Fprintf(t, "%s\t%d\t%s\n", b.Name, b.Size, b.SHA256)
	}
	return t.Flush()
}

func (p *printer) diff(a, b *registry.Manifest) error {
	keys := map[string]bool{}
	for k := range a.Metrics {
		keys[k] = true
	}
	for k := range b.Metrics {
		keys[k] = true
	}
	type row struct {
		Metric string   `json:"metric"`
		A      *float64 `json:"a"`
		B      *float64 `json:"b"`
		Delta  *float64 `json:"delta"`
	}
	var rows []row
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		r := row{Metric: k}
		if v, ok := a.Metrics[k]; ok {
			r.A = &v
		}
		if v, ok := b.Metrics[k]; ok {
			r.B = &v
		}
		if r.A != nil && r.B != nil {
			d := *r.B - *r.A
			r.Delta = &d
		}
		rows = append(rows, r)
	}
	if p.json {
		return p.emit(map[string]any{"a": a.Version, "b": b.Version, "metrics": rows})
	}
	t := p.table()
	fmt.Fprintf(t, "METRIC\t%s\t%s\tDELTA\n", a.Version, b.Version)
	f := func(v *float64) string {
		if v == nil || math.IsNaN(*v) {
			return "-"
		}
		return fmt.Sprintf("%.6g", *v)
	}
	for _, r := range rows {
		d := "-"
		if r.Delta != nil {
			d = fmt.Sprintf("%+.4g", *r.Delta)
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", r.Metric, f(r.A), f(r.B), d)
	}
	return t.Flush()
}

func (p *printer) change(c registry.AliasChange) error {
	if p.json {
		return p.emit(c)
	}
	from := c.From
	if from == "" {
		from = "(unset)"
	}
	to := c.To
	switch {
	case to == "":
		to = "(unset)"
	case c.Share > 0:
		to += fmt.Sprintf(" for %.0f%% of shoppers", 100*c.Share)
	}
	fmt.Fprintf(p.w, "%s %s/%s: %s -> %s (#%d by %s: %s)\n", c.Action, c.Model, c.Alias, from, to, c.Sequence, c.Actor, c.Reason)
	return nil
}

func (p *printer) history(h []registry.AliasChange) error {
	if p.json {
		return p.emit(h)
	}
	t := p.table()
	fmt.Fprintln(t, "#\tTIME\tACTION\tFROM\tTO\tACTOR\tREASON")
	for _, c := range h {
		fmt.Fprintf(t, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Sequence, c.Time.Format(time.DateTime), c.Action, c.From, c.To, c.Actor, c.Reason)
	}
	return t.Flush()
}
