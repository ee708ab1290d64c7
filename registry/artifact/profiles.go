package artifact

import "fmt"

// Segment documents one user segment rule, so the manifest says what a
// segment name means.
type Segment struct {
	Name       string `json:"name"`
	Definition string `json:"definition"`
}

// UserProfile is one user's feature snapshot.
type UserProfile struct {
	ID       string    `json:"id"`
	Features []float64 `json:"f"`
	Segment  string    `json:"s"`
	// Recent items interacted with, most recent last (bounded), and items
	// bought; recommendation uses both.
	Recent    []string `json:"r,omitempty"`
	Purchased []string `json:"p,omitempty"`
	// Cluster is the user's k-means cluster (behavioural, unlike the
	// rule-based Segment); see the profiles manifest for what each means.
	Cluster int `json:"c,omitempty"`
	// Audit holds the shopper's protected attributes (gender, age band,
	// and those the schema declares protected): campaigns audit and
	// constrain their offers on them (campaign.Guard); no model reads them.
	Audit map[string]string `json:"a,omitempty"`

	pos int // its place in Profiles.Users
}

// Position is the profile's place among its model's users, for caches
// kept beside the model.
func (u *UserProfile) Position() int { return u.pos }

// Profiles is the per-user snapshot the server looks up by id in constant time.
type Profiles struct {
	Features []string      `json:"features"`
	Segments []Segment     `json:"segments"`
	Users    []UserProfile `json:"users"`

	index    map[string]int
	features map[string]int
}

// Kind implements Artifact.
func (*Profiles) Kind() string { return KindProfiles }

// Validate implements Artifact.
func (p *Profiles) Validate() error {
	n := len(p.Features)
	if n == 0 {
		return fmt.Errorf("profiles have no features")
	}
	known := map[string]bool{}
	for _, s := range p.Segments {
		known[s.Name] = true
	}
	seen := make(map[string]bool, len(p.Users))
	for i, u := range p.Users {
		if u.ID == "" || seen[u.ID] {
			return fmt.Errorf("user %d: empty or duplicate id %q", i, u.ID)
		}
		seen[u.ID] = true
		if len(u.Features) != n {
			return fmt.Errorf("user %s: %d features, want %d", u.ID, len(u.Features), n)
		}
		if err := bounded("features", u.Features...); err != nil {
			return fmt.Errorf("user %s: %w", u.ID, err)
		}
		if !known[u.Segment] {
			return fmt.Errorf("user %s: segment %q is not defined", u.ID, u.Segment)
		}
	}
	return nil
}

func (p *Profiles) prepare() {
	p.index = make(map[string]int, len(p.Users))
	for i := range p.Users {
		p.index[p.Users[i].ID] = i
		p.Users[i].pos = i
	}
	p.features = make(map[string]int, len(p.Features))
	for i, f := range p.Features {
		p.features[f] = i
	}
}

// Prepare builds the lookup index (Decode calls it).
func (p *Profiles) Prepare() { p.prepare() }

// Lookup returns a user's profile.
func (p *Profiles) Lookup(id string) (*UserProfile, bool) {
	i, ok := p.index[id]
	if !ok {
		return nil, false
	}
	return &p.Users[i], true
}

// FeatureIndex returns the position of a feature name, -1 if absent.
func (p *Profiles) FeatureIndex(name string) int {
	if i, ok := p.features[name]; ok {
		return i
	}
	return -1
}
