// Package e2e runs the real binaries: against a real S3-compatible
// server, the trainer generates a shop and publishes models to S3, the
// server serves them, and a model is promoted and rolled back under load;
// the server survives SIGKILL without losing acknowledged events; and the
// promotion loop (randomized offers, logged exposures, the trainer's
// experiment readout) measures what a simulated shop's offers did.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/providers/s3"
	"github.com/promoai/promo/registry/s3server"
	"github.com/promoai/promo/server/loadtest"
)

func repoRoot(t *testing.T) string {
	root, err := s3server.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildBinaries builds the commands (package paths from the repository
// root) into a temporary folder and returns it.
func buildBinaries(t *testing.T, pkgs ...string) string {
	t.Helper()
	bin := t.TempDir()
	cmd := exec.Command("go", append([]string{"build", "-o", bin + "/"}, pkgs...)...)
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// runningServer is a promo-server process started by startServer.
type runningServer struct {
	grpcAddr, httpAddr string
	cmd                *exec.Cmd
	exited             chan error // receives the exit once the process ends
}

// readerToken is a non-admin token every test server accepts.
const readerToken = "e2e-reader-5d8a1c7e3f9b2046a8c1e5d7f3b9a204"

// startServer starts bin/promo-server on free loopback ports with token
// as an admin token and readerToken as a user one (serving and read
// calls need none), and the given
// extra flags and environment. Its log is printed if the test fails; it
// is killed when the test ends.
func startServer(t *testing.T, bin string, env []string, token string, args ...string) *runningServer {
	t.Helper()
	tokens := filepath.Join(bin, "tokens")
	os.WriteFile(tokens, []byte(token+" admin e2e\n"+readerToken+" user e2e-reader\n"), 0o600)
	s := &runningServer{grpcAddr: freeAddr(t), httpAddr: freeAddr(t), exited: make(chan error, 1)}
	s.cmd = exec.Command(filepath.Join(bin, "promo-server"), append(args, "-grpc.addr="+s.grpcAddr, "-http.addr="+s.httpAddr,
		"-auth.tokens-file="+tokens, "-auth.public=serving,read")...)
	s.cmd.Env = env
	logf, _ := os.Create(filepath.Join(bin, "server.log"))
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("server log:\n%s", b)
		}
	})
	return s
}

// waitOK polls url until it answers 200, for at most 20 s.
func waitOK(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 in 20s", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestTrainServeSwapOnS3(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	srv := s3server.Start(t)
	bin := buildBinaries(t, "./trainer/cmd/promo-trainer", "./server/cmd/promo-server")
	bucket := srv.NewBucketName()
	store := []string{"-store.type=s3", "-store.s3.endpoint=" + srv.Endpoint, "-store.s3.bucket=" + bucket, "-store.s3.insecure", "-store.s3.create-bucket"}
	env := append(os.Environ(), "AWS_ACCESS_KEY_ID="+srv.AccessKey, "AWS_SECRET_ACCESS_KEY="+srv.SecretKey)
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	// The tiny shop's propensity model misses the first-version floor
	// (AUC 0.65): lift it, or the server would rightly serve nothing.
	out := run("promo-trainer", append(store, "-generate=tiny", "-once", "-gate.first-auc=0")...)
	if !strings.Contains(out, "propensity") || !strings.Contains(out, "recommender") {
		t.Fatalf("trainer output:\n%s", out)
	}
	// A second propensity version, published to staging only.
	run("promo-trainer", append(store, "-once", "-models=propensity", "-alias=staging", "-gate.first-auc=0")...)
	bkt, err := s3.New(context.Background(), s3.Config{Endpoint: srv.Endpoint, Bucket: bucket, Insecure: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(bkt)
	prod, err := reg.Alias(context.Background(), "propensity", "production")
	if err != nil {
		t.Fatal(err)
	}
	staging, err := reg.Alias(context.Background(), "propensity", "staging")
	if err != nil || staging.Version == prod.Version {
		t.Fatalf("staging %v %v", staging, err)
	}

	token := "e2e-3a7d1f9c5e2b8046d1a4c7e9f2b5d803"
	srvProc := startServer(t, bin, env, token, append(store, "-models.check-interval=500ms", "-shutdown.delay=100ms")...)
	grpcAddr, httpAddr, server, exited := srvProc.grpcAddr, srvProc.httpAddr, srvProc.cmd, srvProc.exited
	waitOK(t, "http://"+httpAddr+"/readyz")
	// REST answers with the production version.
	resp, err := http.Post("http://"+httpAddr+"/v1/score", "application/json", strings.NewReader(`{"userId":"u1","explain":true}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var score struct {
		PurchaseProbability float64
		Model               struct{ Version string }
	}
	json.Unmarshal(body, &score)
	if resp.StatusCode != 200 || score.Model.Version != prod.Version {
		t.Fatalf("REST score: %d %s", resp.StatusCode, body)
	}

	// Promote the staging version and roll it back, repeatedly, under load.
	users := make([]string, 300)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	o := loadtest.Options{GRPCAddr: grpcAddr, Concurrency: 8, Users: users, Token: token}
	s := loadtest.SwapOptions{Model: "propensity", Alias: "production", Candidate: staging.Version, Changes: 6, Timeout: 3 * time.Second}
	res, err := loadtest.HotSwap(context.Background(), o, s)
	loadtest.PrintSwap(os.Stdout, res, s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 || res.Unversioned != 0 || res.NotServed != 0 || res.Changes != 6 || res.Requests < 100 {
		t.Fatalf("hot swap under load: %+v", res)
	}
	h, _ := reg.History(context.Background(), "propensity", "production")
	if h[0].Action != registry.ActionRollback || h[0].To != prod.Version || h[0].Actor != "e2e" {
		t.Fatalf("history after the swaps: %+v", h[0])
	}
	// SIGTERM: a clean, prompt exit.
	server.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("server exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not stop on SIGTERM")
	}
}

// ingester sends events to a server's Ingest in batches of 500, each with
// an id made of prefix and a count, and fails the test on any rejection.
type ingester struct {
	t      *testing.T
	ctx    context.Context
	client promov1.EventServiceClient
	prefix string
	n      int
	batch  []*promov1.Event
}

func (in *ingester) send(e *promov1.Event) {
	in.n++
	e.EventId = fmt.Sprintf("%s-%d", in.prefix, in.n)
	in.batch = append(in.batch, e)
	if len(in.batch) == 500 {
		in.flush()
	}
}

func (in *ingester) flush() {
	in.t.Helper()
	if len(in.batch) == 0 {
		return
	}
	resp, err := in.client.Ingest(in.ctx, &promov1.IngestRequest{Events: in.batch})
	if err != nil || resp.Rejected > 0 {
		in.t.Fatalf("ingest: %v %+v", err, resp)
	}
	in.batch = in.batch[:0]
}
