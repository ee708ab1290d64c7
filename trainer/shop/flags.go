package shop

import (
	"flag"
	"fmt"
)

// Choice is a shop chosen on the command line: a preset size, changed by
// any override that is set (zero keeps the preset's value).
type Choice struct {
	Size            string
	Seed            uint64 // 0: the preset's
	Users, Items    int
	SessionsPerWeek float64
	ExperimentShare float64
	ExposureRate    float64
}

// RegisterFlags registers the choice's flags, with size as the default
// preset and the seed's flag named seedFlag.
func (c *Choice) RegisterFlags(fs *flag.FlagSet, size, seedFlag string) {
	fs.StringVar(&c.Size, "size", size, "generated shop: preset size (tiny, small, ml100k, medium, large)")
	fs.Uint64Var(&c.Seed, seedFlag, 0, "generated shop: seed (0: the preset's)")
	fs.IntVar(&c.Users, "users", 0, "generated shop: override the preset's number of users")
	fs.IntVar(&c.Items, "items", 0, "generated shop: override the preset's number of items")
	fs.Float64Var(&c.SessionsPerWeek, "sessions-per-week", 0, "generated shop: override the preset's mean sessions per user per week")
	fs.Float64Var(&c.ExperimentShare, "experiment-share", 0, "generated shop: override the share of its days (at the end) that run the randomized experiment")
	fs.Float64Var(&c.ExposureRate, "exposure-rate", 0, "generated shop: override the chance that a session during the experiment gets a randomized decision")
}

// Params are the chosen shop's parameters.
func (c Choice) Params() (Params, error) {
	p, err := Preset(c.Size)
	if err != nil {
		return p, err
	}
	if c.Seed != 0 {
		p.Seed = c.Seed
	}
	if c.Users > 0 {
		p.Users = c.Users
	}
	if c.Items > 0 {
		p.Items = c.Items
	}
	if c.SessionsPerWeek > 0 {
		p.SessionsPerWeek = c.SessionsPerWeek
	}
	if c.ExperimentShare > 0 {
		p.ExperimentShare = c.ExperimentShare
	}
	if c.ExposureRate > 0 {
		p.ExposureRate = c.ExposureRate
	}
	if c.ExperimentShare > 1 || c.ExposureRate > 1 {
		return p, fmt.Errorf("-experiment-share and -exposure-rate are shares, at most 1")
	}
	return p, nil
}

// Describe says what the shop is, for a printed header.
func (p Params) Describe() string {
	return fmt.Sprintf("synthetic shop (%d users, seed %d, experiment in the last %.0f of %d days with %.0f%% of sessions randomized)",
		p.Users, p.Seed, p.ExperimentShare*float64(p.Days), p.Days, 100*p.ExposureRate)
}
