package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	promov1 "github.com/promoai/promo/proto/promo/v1"
)

// SoakResult is what a soak run saw.
type SoakResult struct {
	Duration time.Duration
	// Valid and Hostile count the requests of each kind.
	Valid, Hostile int64
	// ValidFailures are valid requests that failed; HostileAccepted are
	// hostile ones the server answered as if they were fine.
	ValidFailures, HostileAccepted int64
	// NonFinite counts numbers in answers that were NaN or infinite.
	NonFinite int64
	// P99 of the valid requests.
	P99 time.Duration
	// The server's goroutines and resident memory before and after, from
	// its /metrics.
	GoroutinesStart, GoroutinesEnd float64
	RSSStart, RSSEnd               float64
	// Examples of what went wrong, a few of each.
	Problems []string
}

// Soak sends a mix of valid and hostile traffic for o.Duration with
// o.Concurrency clients: valid Score, Recommend, SimilarItems, GetOffers
// over gRPC and Score over REST, and requests an attacker or a broken
// client would send (oversized and unbounded fields, non-finite and
// extreme numbers, malformed protobuf and JSON, wrong methods, missing
// tokens, health watches left open, bodies that trickle in). Every valid
// request must succeed with finite numbers; every hostile one must be
// refused with the right kind of error.
func Soak(ctx context.Context, o Options) (SoakResult, error) {
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	if o.Duration == 0 {
		o.Duration = 60 * time.Second
	}
	if len(o.Users) == 0 || len(o.Items) == 0 || o.HTTPAddr == "" {
		return SoakResult{}, fmt.Errorf("loadtest: a soak needs user ids, item ids and the HTTP address")
	}
	conn, err := grpc.NewClient(o.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return SoakResult{}, err
	}
	defer conn.Close()
	var res SoakResult
	res.GoroutinesStart, res.RSSStart, err = serverGauges(ctx, o.HTTPAddr)
	if err != nil {
		return res, err
	}
	s := &soak{o: o, conn: conn, http: &http.Client{Timeout: 10 * time.Second}}
	deadline := time.Now().Add(o.Duration)
	var wg sync.WaitGroup
	for w := range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if r.IntN(4) == 0 {
					s.hostile(ctx, r)
				} else {
					s.valid(ctx, r)
				}
			}
		}()
	}
	wg.Wait()
	res.Duration = o.Duration
	// Let the server settle (closed streams, idle connections) before the
	// second look at its goroutines.
	conn.Close()
	time.Sleep(2 * time.Second)
	res.GoroutinesEnd, res.RSSEnd, err = serverGauges(ctx, o.HTTPAddr)
	res.Valid, res.Hostile = s.valid_.Load(), s.hostile_.Load()
	res.ValidFailures, res.HostileAccepted, res.NonFinite = s.validFailures.Load(), s.hostileAccepted.Load(), s.nonFinite.Load()
	s.mu.Lock()
	res.P99 = percentile(s.latencies, 0.99)
	res.Problems = s.problems
	s.mu.Unlock()
	return res, err
}

type soak struct {
	o    Options
	conn *grpc.ClientConn
	http *http.Client

	valid_, hostile_                          atomic.Int64
	validFailures, hostileAccepted, nonFinite atomic.Int64

	mu        sync.Mutex
	latencies []time.Duration
	problems  []string
}

func (s *soak) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.problems) < 20 {
		s.problems = append(s.problems, fmt.Sprintf(format, args...))
	}
}

// valid sends one request a well-behaved client would, and checks the
// answer.
func (s *soak) valid(ctx context.Context, r *rand.Rand) {
	s.valid_.Add(1)
	user, item := s.o.Users[r.IntN(len(s.o.Users))], s.o.Items[r.IntN(len(s.o.Items))]
	start := time.Now()
	var resp proto.Message
	var err error
	switch r.IntN(5) {
	case 0:
		resp, err = promov1.NewScoringServiceClient(s.conn).Score(ctx, &promov1.ScoreRequest{UserId: user, Explain: true})
	case 1:
		resp, err = promov1.NewRecommendationServiceClient(s.conn).Recommend(ctx, &promov1.RecommendRequest{UserId: user, K: 10, SessionItemIds: []string{item}})
	case 2:
		resp, err = promov1.NewRecommendationServiceClient(s.conn).SimilarItems(ctx, &promov1.SimilarItemsRequest{ItemId: item, K: 5})
	case 3:
		resp, err = promov1.NewPromotionServiceClient(s.conn).GetOffers(ctx, &promov1.GetOffersRequest{UserId: user,
			Cart: &promov1.Cart{Lines: []*promov1.CartLine{{ItemId: item, Quantity: int32(1 + r.IntN(3)), UnitPrice: 5 + 100*r.Float64()}}}})
	default:
		var body []byte
		body, err = s.post("/v1/score", `{"userId":"`+user+`"}`, http.StatusOK)
		if err == nil {
			if bytes.Contains(body, []byte(`"NaN"`)) || bytes.Contains(body, []byte("Infinity")) {
				s.nonFinite.Add(1)
				s.problem("REST Score: a non-finite number in %s", body)
			}
		}
	}
	d := time.Since(start)
	s.mu.Lock()
	s.latencies = append(s.latencies, d)
	s.mu.Unlock()
	if err != nil {
		s.validFailures.Add(1)
		s.problem("valid request failed: %v", err)
		return
	}
	if resp != nil {
		if n := countNonFinite(resp.ProtoReflect()); n > 0 {
			s.nonFinite.Add(int64(n))
			s.problem("non-finite numbers in %v", resp)
		}
	}
}

// hostile sends one request a broken or malicious client would, and checks
// that it is refused the right way.
func (s *soak) hostile(ctx context.Context, r *rand.Rand) {
	s.hostile_.Add(1)
	refused := func(name string, err error, want ...codes.Code) {
		for _, c := range want {
			if status.Code(err) == c {
				return
			}
		}
		s.hostileAccepted.Add(1)
		s.problem("%s: %v, want one of %v", name, err, want)
	}
	switch r.IntN(10) {
	case 0: // an unbounded repeated field
		cats := make([]string, 5000)
		for i := range cats {
			cats[i] = strconv.Itoa(i)
		}
		_, err := promov1.NewRecommendationServiceClient(s.conn).Recommend(ctx, &promov1.RecommendRequest{K: 10, Categories: cats})
		refused("5,000 categories", err, codes.InvalidArgument)
	case 1: // extreme numbers
		_, err := promov1.NewScoringServiceClient(s.conn).Score(ctx, &promov1.ScoreRequest{Features: map[string]float64{"recency_days": 1e308, "frequency": -1e308}})
		refused("Score at 1e308", err, codes.InvalidArgument)
	case 2:
		_, err := promov1.NewPromotionServiceClient(s.conn).GetOffers(ctx, &promov1.GetOffersRequest{UserId: "x",
			Cart: &promov1.Cart{Value: math.NaN(), Lines: []*promov1.CartLine{{ItemId: "a", Quantity: 1, UnitPrice: math.Inf(1)}}}})
		refused("GetOffers with a NaN and an infinity", err, codes.InvalidArgument)
	case 3: // bytes that are not protobuf
		var out promov1.ScoreResponse
		err := s.conn.Invoke(ctx, promov1.ScoringService_Score_FullMethodName, rawMessage{0xff, 0xff, 0xff, 0x0f}, &out, grpc.ForceCodecV2(rawCodec{}))
		refused("malformed protobuf", err, codes.InvalidArgument)
	case 4: // events without a token
		_, err := promov1.NewEventServiceClient(s.conn).Ingest(ctx, &promov1.IngestRequest{Events: []*promov1.Event{{EventId: "x", Type: promov1.EventType_EVENT_TYPE_VIEW}}})
		refused("Ingest without a token", err, codes.Unauthenticated, codes.PermissionDenied)
	case 5: // a health watch left to the server to clean up
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		if w, err := healthpb.NewHealthClient(s.conn).Watch(wctx, &healthpb.HealthCheckRequest{}); err == nil {
			_, _ = w.Recv()
		}
		<-wctx.Done()
		cancel()
	case 6: // malformed JSON, garbage after JSON, a wrong method
		if _, err := s.post("/v1/score", `{"userId":`, http.StatusBadRequest); err != nil {
			s.hostileAccepted.Add(1)
			s.problem("malformed JSON: %v", err)
		}
		if _, err := s.post("/v1/score", `{"userId":"u0"} {"more":1}`, http.StatusBadRequest); err != nil {
			s.hostileAccepted.Add(1)
			s.problem("garbage after the JSON: %v", err)
		}
		if resp, err := s.http.Get("http://" + s.o.HTTPAddr + "/v1/score"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
			s.hostileAccepted.Add(1)
			s.problem("GET /v1/score: %v %v", err, resp)
		} else {
			resp.Body.Close()
		}
	case 7: // an oversized body
		big := `{"userId":"` + strings.Repeat("x", 5<<20) + `"}`
		if _, err := s.post("/v1/score", big, http.StatusRequestEntityTooLarge); err != nil {
			s.hostileAccepted.Add(1)
			s.problem("a 5 MB body: %v", err)
		}
	case 8: // a promotion reason of 100 kB, without a token
		body := `{"version":"x","reason":"` + strings.Repeat("r", 100_000) + `"}`
		if _, err := s.post("/v1/models/propensity/aliases/production:promote", body, http.StatusUnauthorized); err != nil {
			s.hostileAccepted.Add(1)
			s.problem("a promote without a token: %v", err)
		}
	default: // a body that trickles in, then stops
		c, err := net.DialTimeout("tcp", s.o.HTTPAddr, 2*time.Second)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"userId\"")
		time.Sleep(100 * time.Millisecond)
		c.Close()
	}
}

// post sends body to path and returns the answer when its status is want.
func (s *soak) post(path, body string, want int) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.o.HTTPAddr+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return data, fmt.Errorf("POST %s: status %d, want %d: %.200s", path, resp.StatusCode, want, data)
	}
	return data, nil
}

// countNonFinite counts NaN and infinite numbers in m, at any depth.
func countNonFinite(m protoreflect.Message) int {
	n := 0
	value := func(fd protoreflect.FieldDescriptor, v protoreflect.Value) {
		switch fd.Kind() {
		case protoreflect.DoubleKind, protoreflect.FloatKind:
			if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
				n++
			}
		case protoreflect.MessageKind, protoreflect.GroupKind:
			n += countNonFinite(v.Message())
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			for i := range v.List().Len() {
				value(fd, v.List().Get(i))
			}
		case fd.IsMap():
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				value(fd.MapValue(), mv)
				return true
			})
		default:
			value(fd, v)
		}
		return true
	})
	return n
}

// serverGauges reads the server's goroutines and resident memory from its
// Prometheus metrics.
func serverGauges(ctx context.Context, httpAddr string) (goroutines, rss float64, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "go_goroutines":
			goroutines, _ = strconv.ParseFloat(v, 64)
		case "process_resident_memory_bytes":
			rss, _ = strconv.ParseFloat(v, 64)
		}
	}
	return goroutines, rss, sc.Err()
}

// rawMessage and rawCodec send bytes as they are.
type rawMessage []byte

type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(rawMessage))}, nil
}
func (rawCodec) Unmarshal(mem.BufferSlice, any) error { return nil }
func (rawCodec) Name() string                         { return "proto" }

// PrintSoak writes a soak run's table.
func PrintSoak(w io.Writer, r SoakResult) {
	t := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(t, "soak: %s of mixed valid and hostile traffic\n", r.Duration)
	fmt.Fprintf(t, "requests\t%d (%d valid, %d hostile)\n", r.Valid+r.Hostile, r.Valid, r.Hostile)
	fmt.Fprintf(t, "valid requests that failed\t%d\n", r.ValidFailures)
	fmt.Fprintf(t, "hostile requests not refused as they should be\t%d\n", r.HostileAccepted)
	fmt.Fprintf(t, "non-finite numbers returned\t%d\n", r.NonFinite)
	fmt.Fprintf(t, "p99 of valid requests\t%s\n", r.P99.Round(10*time.Microsecond))
	fmt.Fprintf(t, "server goroutines\t%.0f at start, %.0f at end\n", r.GoroutinesStart, r.GoroutinesEnd)
	fmt.Fprintf(t, "server RSS\t%.0f MiB at start, %.0f MiB at end\n", r.RSSStart/(1<<20), r.RSSEnd/(1<<20))
	t.Flush()
	for _, p := range r.Problems {
		fmt.Fprintln(w, "  ", p)
	}
}

// Failed says whether the soak found a defect.
func (r SoakResult) Failed() bool {
	return r.ValidFailures > 0 || r.NonFinite > 0 || r.HostileAccepted > 0
}
