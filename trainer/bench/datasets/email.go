package datasets

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// EmailArms are the arms of the generated e-mail experiment; EmailControl
// is its control.
var EmailArms = []string{"mens_email", "womens_email", EmailControl}

// EmailControl is the arm that got no e-mail.
const EmailControl = "no_email"

// EmailShopper is one shopper of the generated e-mail experiment: what the
// table says of them and, for the benchmark only, their true response
// probabilities under each arm.
type EmailShopper struct {
	ID        string
	Arm       string
	Recency   int     // months since the last purchase, 1 to 12
	History   float64 // spent in the last year
	Mens      bool    // bought menswear in the last year
	Womens    bool    // bought womenswear
	ZipCode   string  // urban, suburban or rural
	Newbie    bool    // a new customer in the last 12 months
	Channel   string  // phone, web or multichannel
	Gender    string  // protected: audited, never a model input
	Visit     bool    // came to the shop within the follow-up
	Purchase  bool    // bought within it
	Spend     float64 // what they spent
	PVisit    map[string]float64
	PPurchase map[string]float64
}

// EmailParams shape the generated experiment.
type EmailParams struct {
	Shoppers int
	Seed     uint64
	Start    time.Time // of the mailing, which takes a day
}

// GenerateEmail draws a retail e-mail experiment shaped like the public
// one customers of e-commerce analytics know (a menswear e-mail, a
// womenswear e-mail and no e-mail, a third each; visits and purchases over
// two weeks), with effects that depend on what a shopper bought before
// and the channel they buy through: a menswear e-mail moves menswear
// buyers, most of all those who buy on the web; a womenswear e-mail moves
// womenswear buyers and some menswear ones; phone shoppers barely read
// e-mail; newcomers respond more. The true probabilities are kept so a
// benchmark can check what a model and a readout find.
func GenerateEmail(p EmailParams) []EmailShopper {
	r := rand.New(rand.NewPCG(p.Seed, 0xe3a11))
	out := make([]EmailShopper, p.Shoppers)
	for i := range out {
		s := EmailShopper{ID: fmt.Sprintf("cust-%06d", i), Arm: EmailArms[r.IntN(3)], Recency: 1 + r.IntN(12),
			History: math.Round(math.Exp(4.9+0.9*r.NormFloat64())*100) / 100, Newbie: r.Float64() < 0.5,
			PVisit: map[string]float64{}, PPurchase: map[string]float64{}}
		switch u := r.Float64(); {
		case u < 0.45:
			s.Mens = true
		case u < 0.9:
			s.Womens = true
		default:
			s.Mens, s.Womens = true, true
		}
		s.ZipCode = pick(r, []string{"urban", "suburban", "rural"}, []float64{0.4, 0.45, 0.15})
		s.Channel = pick(r, []string{"phone", "web", "multichannel"}, []float64{0.44, 0.44, 0.12})
		female := 0.3
		if s.Womens {
			female = 0.75
		}
		s.Gender = "m"
		if r.Float64() < female {
			s.Gender = "f"
		}
		for _, arm := range EmailArms {
			v, b := emailResponse(&s, arm)
			s.PVisit[arm], s.PPurchase[arm] = v, v*b
		}
		s.Visit = r.Float64() < s.PVisit[s.Arm]
		if s.Visit {
			_, b := emailResponse(&s, s.Arm)
			s.Purchase = r.Float64() < b
		}
		if s.Purchase {
			s.Spend = math.Round(math.Exp(math.Log(40+s.History/4)+0.5*r.NormFloat64())*100) / 100
		}
		out[i] = s
	}
	return out
}

// emailResponse is a shopper's chance to visit under arm, and to buy
// once there.
func emailResponse(s *EmailShopper, arm string) (visit, buyGivenVisit float64) {
	logit := -2.1 - 0.07*float64(s.Recency) + 0.35*math.Log(s.History/100)
	if s.ZipCode == "rural" {
		logit += 0.25
	}
	if s.Newbie {
		logit -= 0.2
	}
	reads := map[string]float64{"web": 1.3, "multichannel": 1, "phone": 0.25}[s.Channel]
	if s.Newbie {
		reads *= 1.3
	}
	effect := 0.0
	switch arm {
	case "mens_email":
		if s.Mens {
			effect += 0.55
		}
		if s.Womens && !s.Mens {
			effect -= 0.1 // an e-mail about the wrong department
		}
	case "womens_email":
		if s.Womens {
			effect += 0.45
		}
		if s.Mens {
			effect += 0.15
		}
	}
	visit = sigmoid(logit + reads*effect)
	buy := -2.6 + 0.3*math.Log(s.History/100) - 0.04*float64(s.Recency)
	if (arm == "mens_email" && s.Mens) || (arm == "womens_email" && s.Womens) {
		buy += 0.25 * reads // the e-mail's offer applies to what they came for
	}
	return visit, sigmoid(buy)
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func pick(r *rand.Rand, values []string, probs []float64) string {
	u := r.Float64()
	for i, p := range probs {
		if u < p {
			return values[i]
		}
		u -= p
	}
	return values[len(values)-1]
}

// WriteEmailCSV writes shoppers as the table `promo-trainer import -format
// rct` reads: one row per shopper, the decision times spread over the
// mailing day, the arm's design probability as the propensity.
func WriteEmailCSV(w io.Writer, shoppers []EmailShopper, start time.Time) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"user_id", "arm", "time", "propensity", "attr.recency", "attr.history", "attr.mens", "attr.womens",
		"attr.zip_code", "attr.newbie", "attr.channel", "attr.gender", "visit", "purchase", "spend"}); err != nil {
		return err
	}
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	for i, s := range shoppers {
		at := start.Add(time.Duration(i) * 24 * time.Hour / time.Duration(max(1, len(shoppers))))
		if err := cw.Write([]string{s.ID, s.Arm, at.Format(time.RFC3339), "0.3333", strconv.Itoa(s.Recency), strconv.FormatFloat(s.History, 'f', 2, 64),
			flag(s.Mens), flag(s.Womens), s.ZipCode, flag(s.Newbie), s.Channel, s.Gender, flag(s.Visit), flag(s.Purchase), strconv.FormatFloat(s.Spend, 'f', 2, 64)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
