// Package deploytest checks the manifests in deploy/ against the real
// binaries: every flag passed to promo-server, promo-trainer or
// promo-gateway must be one the binary defines, and every environment
// variable given to them must be one the code reads.
package deploytest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/promoai/promo/registry/s3server"
)

func repoRoot(t *testing.T) string {
	root, err := s3server.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var flagLine = regexp.MustCompile(`^\s+-([a-z0-9][a-z0-9.\-]*)`)

// flagsOf builds a binary and lists the flags its -h output shows.
func flagsOf(t *testing.T, root, pkg string) map[string]bool {
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	var out bytes.Buffer
	h := exec.Command(bin, "-h")
	h.Stdout, h.Stderr = &out, &out
	_ = h.Run() // -h exits non-zero for some flag sets
	flags := map[string]bool{}
	for _, l := range strings.Split(out.String(), "\n") {
		if m := flagLine.FindStringSubmatch(l); m != nil {
			flags[m[1]] = true
		}
	}
	if len(flags) < 3 {
		t.Fatalf("%s -h listed only %v:\n%s", pkg, flags, out.String())
	}
	return flags
}

// envReadByCode finds the environment variables the Go code reads.
func envReadByCode(t *testing.T, root string) map[string]bool {
	re := regexp.MustCompile(`(?:Getenv|firstEnv|LookupEnv)\(((?:"[A-Z0-9_]+"(?:,\s*)?)+)\)`)
	name := regexp.MustCompile(`"([A-Z0-9_]+)"`)
	out := map[string]bool{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() && (d.Name() == ".cache" || d.Name() == ".git" || d.Name() == "var") {
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, _ := os.ReadFile(p)
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			for _, n := range name.FindAllStringSubmatch(m[1], -1) {
				out[n[1]] = true
			}
		}
		return nil
	})
	return out
}

type usage struct {
	file, binary string
	args         []string
	env          []string
}

// collect walks a YAML tree and records args/command and env of every
// container or compose service that runs one of our binaries.
func collect(file string, node any, out *[]usage) {
	switch n := node.(type) {
	case map[string]any:
		name, _ := n["name"].(string)
		if target := buildTarget(n); target != "" {
			name = target
		}
		if img, _ := n["image"].(string); strings.HasPrefix(img, "promo-") {
			name = strings.TrimPrefix(strings.Split(img, ":")[0], "promo-")
		}
		if name == "server" || name == "trainer" || name == "gateway" {
			u := usage{file: file, binary: name}
			for _, key := range []string{"args", "command"} {
				if l, ok := n[key].([]any); ok {
					for _, a := range l {
						u.args = append(u.args, a.(string))
					}
				}
			}
			switch env := n["environment"].(type) {
			case map[string]any:
				for k := range env {
					u.env = append(u.env, k)
				}
			}
			if env, ok := n["env"].([]any); ok {
				for _, e := range env {
					if m, ok := e.(map[string]any); ok {
						u.env = append(u.env, m["name"].(string))
					}
				}
			}
			*out = append(*out, u)
		}
		for _, v := range n {
			collect(file, v, out)
		}
	case []any:
		for _, v := range n {
			collect(file, v, out)
		}
	}
}

func buildTarget(n map[string]any) string {
	if b, ok := n["build"].(map[string]any); ok {
		t, _ := b["target"].(string)
		return t
	}
	return ""
}

func TestDeployFlagsAndEnvExist(t *testing.T) {
	root := repoRoot(t)
	flags := map[string]map[string]bool{
		"server":  flagsOf(t, root, "./server/cmd/promo-server"),
		"trainer": flagsOf(t, root, "./trainer/cmd/promo-trainer"),
		"gateway": flagsOf(t, root, "./gateway/cmd/promo-gateway"),
	}
	env := envReadByCode(t, root)
	var uses []usage
	files, _ := filepath.Glob(filepath.Join(root, "deploy", "*.yml"))
	more, _ := filepath.Glob(filepath.Join(root, "deploy", "k8s", "*.yaml"))
	for _, f := range append(files, more...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			collect(filepath.Base(f), doc, &uses)
		}
	}
	if len(uses) < 6 {
		t.Fatalf("found only %d uses of the binaries in deploy/", len(uses))
	}
	// Secrets are passed with envFrom; their keys must be read by the code too.
	secret, _ := os.ReadFile(filepath.Join(root, "deploy", "k8s", "secret.yaml"))
	for _, m := range regexp.MustCompile(`(?m)^\s+([A-Z][A-Z0-9_]+):`).FindAllStringSubmatch(string(secret), -1) {
		uses = append(uses, usage{file: "secret.yaml", binary: "server", env: []string{m[1]}})
	}
	checked := 0
	for _, u := range uses {
		for _, a := range u.args {
			if !strings.HasPrefix(a, "-") {
				continue
			}
			name := strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-")
			if !flags[u.binary][name] {
				t.Errorf("%s: promo-%s has no flag -%s", u.file, u.binary, name)
			}
			checked++
		}
		for _, e := range u.env {
			if !env[e] {
				t.Errorf("%s: promo-%s is given $%s, which no code reads", u.file, u.binary, e)
			}
			checked++
		}
	}
	t.Logf("checked %d flags and variables in %d uses", checked, len(uses))
}
