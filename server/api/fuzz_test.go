package api_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/server/api"
	"github.com/promoai/promo/server/models"
	"github.com/promoai/promo/server/offers"
)

type fixedModels map[string]*models.Loaded

func (f fixedModels) Get(name string) *models.Loaded    { return f[name] }
func (f fixedModels) Canary(name string) *models.Loaded { return f[name+"@canary"] }
func (f fixedModels) Shadow(name string) *models.Loaded { return f[name+"@shadow"] }

func serving() *api.Serving {
	lin := func(n int) artifact.Linear { return artifact.Linear{Intercept: -1, Coef: make([]float64, n)} }
	std := artifact.Standardizer{Mean: []float64{1, 2}, Scale: []float64{1, 2}, Log1p: []bool{true, false}}
	items := &artifact.ItemSim{Items: []artifact.Item{{ID: "a", Category: "x", Price: 10, Cost: 5}, {ID: "b", Category: "y"}},
		Neighbors: [][]artifact.Neighbor{{{Item: 1, Weight: 1}}, {{Item: 0, Weight: 1}}}, Popularity: []float32{1, 0.5}}
	items.Prepare()
	profs := &artifact.Profiles{Features: []string{"f1", "f2"}, Segments: []artifact.Segment{{Name: "new"}},
		Users: []artifact.UserProfile{{ID: "u", Features: []float64{1, 2}, Segment: "new", Recent: []string{"a"}, Purchased: []string{"b"}}}}
	profs.Prepare()
	up := &artifact.Uplift{Features: []string{"f1", "f2"}, Scaler: std, Control: artifact.ArmModel{Arm: "control", Conversion: lin(2), Spend: lin(2)},
		Arms: []artifact.ArmModel{{Arm: "pct10", Conversion: artifact.Linear{Intercept: 1, Coef: []float64{0, 0}}, Spend: artifact.Linear{Intercept: 50, Coef: []float64{0, 0}}}}}
	up.Prepare()
	m := fixedModels{
		artifact.ModelPropensity:  {Name: "propensity", Version: "v1", Artifact: &artifact.Propensity{Features: []string{"f1", "f2"}, Scaler: std, Logit: lin(2), Spend: lin(2)}},
		artifact.ModelRecommender: {Name: "recommender", Version: "v1", Artifact: items},
		artifact.ModelProfiles:    {Name: "profiles", Version: "v1", Artifact: profs},
		artifact.ModelUplift:      {Name: "uplift", Version: "v1", Artifact: up},
	}
	return api.NewServing(m, offers.Default())
}

// finite fails t when any number in m, at any depth, is NaN or infinite:
// JSON clients would get "NaN" where the API promises a number.
func finite(t *testing.T, m proto.Message) {
	t.Helper()
	var walk func(path string, msg protoreflect.Message)
	value := func(path string, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
		switch fd.Kind() {
		case protoreflect.DoubleKind, protoreflect.FloatKind:
			if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
				t.Fatalf("%s is %v in %v", path, f, m)
			}
		case protoreflect.MessageKind, protoreflect.GroupKind:
			walk(path, v.Message())
		}
	}
	walk = func(path string, msg protoreflect.Message) {
		msg.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			p := path + "." + string(fd.Name())
			switch {
			case fd.IsList():
				for i := range v.List().Len() {
					value(fmt.Sprintf("%s[%d]", p, i), fd, v.List().Get(i))
				}
			case fd.IsMap():
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					value(p+"["+k.String()+"]", fd.MapValue(), mv)
					return true
				})
			default:
				value(p, fd, v)
			}
			return true
		})
	}
	walk(string(m.ProtoReflect().Descriptor().Name()), m.ProtoReflect())
}

// FuzzHandlers feeds arbitrary JSON requests to every serving handler: none
// may panic, every failure must be a gRPC status, and every answer's
// numbers must be finite.
func FuzzHandlers(f *testing.F) {
	for _, s := range []string{
		`{"userId":"u","explain":true}`, `{"features":{"f1":1e308,"f2":-1e308}}`, `{"userId":"u","k":5,"sessionItemIds":["a","zz"],"categories":["X"]}`,
		`{"itemId":"a","k":1000}`, `{"userId":"u","cart":{"lines":[{"itemId":"a","quantity":3,"unitPrice":1e300}],"value":5},"maxOffers":3}`,
		`{"k":-1}`, `{}`, `{"features":{"f1":1e9,"f2":-1e9}}`, `{"cart":{"value":1e12}}`,
		`{"cart":{"lines":[{"itemId":"a","quantity":1000000,"unitPrice":1e9}]}}`,
	} {
		f.Add(s)
	}
	s := serving()
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, js string) {
		check := func(err error) {
			if err != nil {
				if _, ok := status.FromError(err); !ok {
					t.Fatalf("non-status error %v", err)
				}
			}
		}
		var sr promov1.ScoreRequest
		if protojson.Unmarshal([]byte(js), &sr) == nil {
			r, err := s.Score(ctx, &sr)
			check(err)
			if err == nil {
				finite(t, r)
				if !(r.PurchaseProbability >= 0 && r.PurchaseProbability <= 1) {
					t.Fatalf("probability %v", r.PurchaseProbability)
				}
			}
		}
		var rr promov1.RecommendRequest
		if protojson.Unmarshal([]byte(js), &rr) == nil {
			r, err := s.Recommend(ctx, &rr)
			check(err)
			if err == nil {
				finite(t, r)
			}
		}
		var si promov1.SimilarItemsRequest
		if protojson.Unmarshal([]byte(js), &si) == nil {
			r, err := s.SimilarItems(ctx, &si)
			check(err)
			if err == nil {
				finite(t, r)
			}
		}
		var or promov1.GetOffersRequest
		if protojson.Unmarshal([]byte(js), &or) == nil {
			r, err := s.GetOffers(ctx, &or)
			check(err)
			if err == nil {
				finite(t, r)
			}
		}
		var ir promov1.IngestRequest
		if protojson.Unmarshal([]byte(js), &ir) == nil {
			for _, e := range ir.GetEvents() {
				ev := api.FromProto(e)
				_ = ev.Validate(time.Now())
			}
		}
	})
}
