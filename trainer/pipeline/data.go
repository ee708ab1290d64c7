package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/features"
)

// dataFile is the file LoadData reads: what the data holds beyond the
// event log's fixed fields, and what the models learn from it.
type dataFile struct {
	Attributes    []features.Attribute `json:"attributes"`
	TopCategories *int                 `json:"top_categories"`
	Propensity    struct {
		Outcome string `json:"outcome"`
	} `json:"propensity"`
	Uplift struct {
		Outcome        string `json:"outcome"`
		CategoryShares bool   `json:"category_shares"`
	} `json:"uplift"`
}

// LoadData reads the attribute schema, the number of categories with
// identity features and the models' outcomes from a JSON file
// (docs/training.md shows one). Unknown fields and unusable values are
// refused, and then c is left as it was.
func (c *Config) LoadData(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("data config: %w", err)
	}
	var f dataFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("data config %s: %w", path, err)
	}
	next := *c
	next.Attributes = f.Attributes
	next.Uplift.CategoryShares = f.Uplift.CategoryShares
	if f.TopCategories != nil {
		next.TopCategories = *f.TopCategories
		if next.TopCategories == 0 {
			next.TopCategories = -1 // 0 in the file means none
		}
	}
	for _, o := range []struct {
		text string
		into *features.Outcome
	}{{f.Propensity.Outcome, &next.Propensity.Outcome}, {f.Uplift.Outcome, &next.Uplift.Outcome}} {
		if o.text == "" {
			continue
		}
		if *o.into, err = features.ParseOutcome(o.text); err != nil {
			return fmt.Errorf("data config %s: %w", path, err)
		}
	}
	if errs := next.validateData(); len(errs) > 0 {
		return fmt.Errorf("data config %s: %w", path, errs[0])
	}
	*c = next
	return nil
}

// validateData checks the attribute schema, the outcomes and the
// propensity feature list.
func (c *Config) validateData() []error {
	var errs []error
	if err := features.ValidateSchema(c.Attributes); err != nil {
		errs = append(errs, err)
	}
	for _, o := range []struct {
		model string
		o     features.Outcome
	}{{"propensity", c.Propensity.Outcome}, {"uplift", c.Uplift.Outcome}} {
		if err := o.o.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s %w", o.model, err))
		}
	}
	if w := c.Propensity.Outcome.Window; w > c.Horizon {
		errs = append(errs, fmt.Errorf("propensity outcome window %s is longer than the %s label horizon", w, c.Horizon))
	}
	schema := c.schema()
	known := map[string]bool{}
	for _, n := range features.Names {
		known[n] = true
	}
	cols := features.Columns{Attributes: schema}
	for _, n := range cols.Names() {
		known[n] = true
	}
	for _, f := range c.Propensity.Features {
		switch {
		case c.isProtected(f):
			errs = append(errs, fmt.Errorf("propensity feature %q is a protected attribute: protected attributes are audited, never model inputs", f))
		case !known[f] && !strings.HasPrefix(f, "cat."):
			errs = append(errs, fmt.Errorf("unknown propensity feature %q", f))
		}
	}
	return errs
}

// isProtected says whether name is a protected attribute: listed in
// Protected or declared protected.
func (c *Config) isProtected(name string) bool {
	if slices.Contains(c.Protected, name) {
		return true
	}
	for _, a := range c.Attributes {
		if a.Name == name && a.Protected {
			return true
		}
	}
	return false
}

// schema is Attributes with every shopper attribute named in Protected
// made protected: naming an attribute protected keeps it out of models
// even when its declaration forgot to.
func (c *Config) schema() []features.Attribute {
	out := slices.Clone(c.Attributes)
	for i, a := range out {
		if (a.Of == "" || a.Of == features.OfUser) && slices.Contains(c.Protected, a.Name) {
			out[i].Protected = true
		}
	}
	return out
}

// columns works out a run's feature columns from the discovery pass,
// logging what it finds about the data's attributes.
func (c *Config) columns(d *features.Discovery) *features.Columns {
	top := c.TopCategories
	if top < 0 {
		top = 0
	}
	cols, notes := d.Columns(c.schema(), top)
	for _, a := range c.Attributes {
		if a.Of != features.OfItem && !a.Protected && slices.Contains(c.Protected, a.Name) {
			c.Logger.Warn("attribute declared as a feature is in the protected list: it is kept out of every model and audited instead", "attribute", a.Name)
		}
	}
	for _, n := range notes {
		c.Logger.Warn("attribute: "+n.Note, "of", n.Of, "attribute", n.Name, "distinct_values", n.Distinct, "examples", strings.Join(n.Examples, ","))
	}
	return &cols
}

// responseText describes the uplift outcome for manifests.
func (c *Config) responseText() string {
	return c.Uplift.Outcome.String() + " of the exposure, before the next exposure (" + eventlog.ControlArm + " exposures alike)"
}
