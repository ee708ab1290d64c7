package promov1_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	promov1 "github.com/promoai/promo/proto/promo/v1"
)

// Every RPC must be reachable over REST: it needs a google.api.http rule,
// and the OpenAPI document must describe its path.
func TestEveryRPCHasAnHTTPRule(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(promov1.OpenAPIv2, &doc); err != nil {
		t.Fatalf("embedded OpenAPI document: %v", err)
	}
	fd := promov1.File_promo_v1_promo_proto
	n := 0
	for i := 0; i < fd.Services().Len(); i++ {
		svc := fd.Services().Get(i)
		for j := 0; j < svc.Methods().Len(); j++ {
			m := svc.Methods().Get(j)
			n++
			opts, _ := m.Options().(*descriptorpb.MethodOptions)
			rule, _ := proto.GetExtension(opts, annotations.E_Http).(*annotations.HttpRule)
			if rule == nil || rule.GetPattern() == nil {
				t.Errorf("%s has no google.api.http annotation", m.FullName())
				continue
			}
			var path string
			switch p := rule.GetPattern().(type) {
			case *annotations.HttpRule_Get:
				path = p.Get
			case *annotations.HttpRule_Post:
				path = p.Post
			case *annotations.HttpRule_Delete:
				path = p.Delete
			case *annotations.HttpRule_Put:
				path = p.Put
			case *annotations.HttpRule_Patch:
				path = p.Patch
			}
			// The OpenAPI generator names path parameters by their JSON names.
			path = regexp.MustCompile(`\{[a-z_]+\}`).ReplaceAllStringFunc(path, func(p string) string {
				parts := strings.Split(strings.Trim(p, "{}"), "_")
				for i := 1; i < len(parts); i++ {
					parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
				}
				return "{" + strings.Join(parts, "") + "}"
			})
			if _, ok := doc.Paths[path]; !ok {
				t.Errorf("%s: path %s missing from the OpenAPI document", m.FullName(), path)
			}
		}
	}
	if n < 13 {
		t.Fatalf("only %d RPCs found", n)
	}
}

// The package is versioned so that breaking changes get a new package.
func TestVersionedPackage(t *testing.T) {
	if pkg := string(promov1.File_promo_v1_promo_proto.Package()); !strings.HasSuffix(pkg, ".v1") {
		t.Fatalf("package %q is not versioned", pkg)
	}
}

// The OpenAPI document names the API and its version, and declares the
// bearer token, so that generated clients send it.
func TestOpenAPIHeader(t *testing.T) {
	var doc struct {
		Info                struct{ Title, Version string }
		SecurityDefinitions map[string]struct {
			Type, In, Name string
		} `json:"securityDefinitions"`
		Security []map[string][]string
	}
	if err := json.Unmarshal(promov1.OpenAPIv2, &doc); err != nil {
		t.Fatal(err)
	}
	bearer := doc.SecurityDefinitions["bearer"]
	if !strings.Contains(doc.Info.Title, "promo") || doc.Info.Version == "" || bearer.In != "header" || bearer.Name != "Authorization" || len(doc.Security) == 0 {
		t.Fatalf("info %+v, security %+v / %+v", doc.Info, doc.SecurityDefinitions, doc.Security)
	}
}
