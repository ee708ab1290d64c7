package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/cli"
	"github.com/promoai/promo/registry/providers/fs"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := cli.Main(context.Background(), args, cli.Env{}, &out, &errOut)
	return out.String() + errOut.String(), err
}

// The promote / rollback / history walk-through of README.md and docs/deployment.md, against a store.
func TestPromoteRollbackHistory(t *testing.T) {
	dir := t.TempDir()
	b, _ := fs.New(dir)
	reg := registry.New(b)
	var vs []string
	for i, auc := range []float64{0.71, 0.74} {
		blobs, err := artifact.Encode(&artifact.ItemSim{Items: []artifact.Item{{ID: "a"}, {ID: "b"}},
			Neighbors: [][]artifact.Neighbor{{{Item: 1, Weight: float32(i + 1)}}, nil}, Popularity: []float32{1, 0.5}})
		if err != nil {
			t.Fatal(err)
		}
		m, err := reg.Publish(context.Background(), registry.PublishRequest{Model: "recommender", Kind: artifact.KindItemSim,
			Blobs: blobs, Metrics: map[string]float64{"ndcg@10": auc}})
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, m.Version)
	}
	store := "-store.dir=" + dir
	if out, err := run(t, store, "promote", "recommender", vs[0], "-reason", "first"); err != nil || !strings.Contains(out, "promote recommender/production: (unset) -> "+vs[0]) {
		t.Fatalf("promote: %s %v", out, err)
	}
	if out, err := run(t, store, "promote", "recommender", vs[1], "-reason", "better ndcg"); err != nil {
		t.Fatalf("promote 2: %s %v", out, err)
	}
	out, err := run(t, store, "models")
	if err != nil || !strings.Contains(out, "production="+vs[1]) {
		t.Fatalf("models: %s %v", out, err)
	}
	out, err = run(t, store, "diff", "recommender", vs[0], vs[1])
	if err != nil || !strings.Contains(out, "+0.03") {
		t.Fatalf("diff: %s %v", out, err)
	}
	if out, err := run(t, store, "rollback", "recommender", "-reason", "bad canary"); err != nil || !strings.Contains(out, vs[1]+" -> "+vs[0]) {
		t.Fatalf("rollback: %s %v", out, err)
	}
	out, err = run(t, store, "history", "recommender", "-json")
	if err != nil {
		t.Fatal(err)
	}
	// A version a replica could not load is never promoted: the alias stays.
	bad, err := reg.Publish(context.Background(), registry.PublishRequest{Model: "recommender", Kind: artifact.KindItemSim,
		Blobs: []registry.Blob{{Name: artifact.BlobName, Data: []byte("not gzip")}}})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, store, "promote", "recommender", bad.Version, "-reason", "oops"); err == nil || !strings.Contains(out+err.Error(), "cannot be served") {
		t.Fatalf("promote an undecodable version: %s %v", out, err)
	}
	var h []registry.AliasChange
	if err := json.Unmarshal([]byte(out), &h); err != nil || len(h) != 3 || h[0].Action != "rollback" || h[0].Reason != "bad canary" {
		t.Fatalf("history: %s %v", out, err)
	}
	if out, err := run(t, store, "show", "recommender", vs[0]); err != nil || !strings.Contains(out, "ndcg@10") || !strings.Contains(out, "model.json.gz") {
		t.Fatalf("show: %s %v", out, err)
	}
	if _, err := run(t, store, "promote", "recommender", vs[0]); err == nil {
		t.Fatal("promote without a reason accepted")
	}
	if _, err := run(t, store, "-reason=x", "promote", "recommender", "20990101T000000.000Z-000000"); err == nil {
		t.Fatal("promote of a missing version accepted")
	}
	// A canary: set with a share, promoted, then gone.
	if out, err := run(t, store, "canary", "set", "recommender", vs[1], "-share", "0.2", "-reason", "try"); err != nil || !strings.Contains(out, "(unset) -> "+vs[1]+" for 20% of shoppers") {
		t.Fatalf("canary set: %s %v", out, err)
	}
	if out, err := run(t, store, "promote-canary", "recommender", "-reason", "it held"); err != nil || !strings.Contains(out, "promote recommender/production: "+vs[0]+" -> "+vs[1]) {
		t.Fatalf("promote-canary: %s %v", out, err)
	}
	if _, err := run(t, store, "canary", "clear", "recommender", "-reason", "again"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("clear after promote-canary: %v", err)
	}
	if out, err := run(t, store, "shadow", "set", "recommender", vs[0], "-reason", "compare"); err != nil || !strings.Contains(out, "shadow recommender/shadow: (unset) -> "+vs[0]) {
		t.Fatalf("shadow set: %s %v", out, err)
	}
	if out, err := run(t, store, "shadow", "clear", "recommender", "-reason", "seen enough"); err != nil || !strings.Contains(out, "-> (unset)") {
		t.Fatalf("shadow clear: %s %v", out, err)
	}
	if _, err := run(t, store, "frobnicate"); err == nil {
		t.Fatal("unknown command accepted")
	}
}

// The walk-through of docs/campaigns.md, on its example campaign.
func TestCampaignsWalkThrough(t *testing.T) {
	doc, err := os.ReadFile("../../docs/campaigns.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(doc), "```json\n")
	example, _, _ := strings.Cut(rest, "```")
	file := filepath.Join(t.TempDir(), "spring.json")
	if err := os.WriteFile(file, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	store := "-store.dir=" + t.TempDir()
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"campaigns", "create", "-file", file, "-reason", "spring plan"}, "campaign spring-sale is at revision 1 (active)"},
		{[]string{"campaigns", "list"}, "spring-sale  active  2027-03-01  2027-03-31  5000"},
		{[]string{"campaigns", "show", "spring-sale"}, `"revision": 1`},
		{[]string{"campaigns", "update", "-file", file, "-revision", "1", "-reason", "more budget"}, "revision 2"},
		{[]string{"campaigns", "pause", "spring-sale", "-reason", "stock issue"}, "campaign spring-sale is paused (revision 3)"},
		{[]string{"campaigns", "resume", "spring-sale", "-reason", "restocked"}, "is active (revision 4)"},
		{[]string{"campaigns", "end", "spring-sale", "-reason", "season over"}, "is ended (revision 5)"},
		{[]string{"campaigns", "history", "spring-sale"}, "stock issue"},
	}
	for _, s := range steps {
		out, err := run(t, append([]string{store}, s.args...)...)
		if err != nil || !strings.Contains(out, s.want) {
			t.Fatalf("%v: %v\n%s\nwant %q", s.args, err, out, s.want)
		}
	}
	// A stale edit, an invalid campaign and a missing reason are refused
	// with what to do.
	if out, err := run(t, store, "campaigns", "update", "-file", file, "-revision", "1", "-reason", "late"); err == nil || !strings.Contains(err.Error(), "ended") {
		t.Fatalf("edit of an ended campaign: %v %s", err, out)
	}
	bad := strings.Replace(strings.Replace(example, `"budget": 5000`, `"budget": 0`, 1), `"kind": "threshold"`, `"kind": "bogo"`, 1)
	bad = strings.Replace(bad, `"spring-sale"`, `"autumn"`, 1)
	os.WriteFile(file, []byte(bad), 0o600)
	_, err = run(t, store, "campaigns", "create", "-file", file, "-reason", "x")
	if err == nil || !strings.Contains(err.Error(), "budget: 0 must be positive") || !strings.Contains(err.Error(), `offers[1].kind: unknown kind "bogo"`) {
		t.Fatalf("invalid campaign: %v", err)
	}
	if _, err := run(t, store, "campaigns", "pause", "spring-sale"); err == nil || !strings.Contains(err.Error(), "-reason") {
		t.Fatalf("no reason: %v", err)
	}
}

// The README's campaign commands, as written there, on docs/campaigns.md's
// example campaign.
func TestReadmeCampaignCommands(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## Campaigns\n")
	_, block, _ := strings.Cut(section, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	doc, err := os.ReadFile("../../docs/campaigns.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(doc), "```json\n")
	example, _, _ := strings.Cut(rest, "```")
	dir := t.TempDir()
	file := filepath.Join(dir, "spring.json")
	if err := os.WriteFile(file, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "registry")
	commands := 0
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		cmd, ok := strings.CutPrefix(line, "go run ./registry/cmd/promoctl ")
		if !ok {
			t.Fatalf("the README's campaigns block has a line that is not promoctl: %q", line)
		}
		args := shellWords(cmd)
		for i := range args {
			switch args[i] {
			case "var/registry":
				args[i] = store
			case "spring.json":
				args[i] = file
			}
		}
		if out, err := run(t, args...); err != nil {
			t.Fatalf("promoctl %s: %v\n%s", cmd, err, out)
		}
		commands++
	}
	if !ok || commands < 3 {
		t.Fatalf("the README's campaigns section has %d promoctl commands", commands)
	}
}

// shellWords splits a command line on spaces, keeping "double quoted"
// words whole: enough for the README's commands.
func shellWords(s string) []string {
	var out []string
	var word strings.Builder
	quoted, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				out, inWord = append(out, word.String()), false
				word.Reset()
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, word.String())
	}
	return out
}
