package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/registry/providers/fs"
	"github.com/promoai/promo/registry/providers/s3"
	"github.com/promoai/promo/registry/s3server"
)

func buildServer(t *testing.T) string {
	return filepath.Join(buildBinaries(t, "./server/cmd/promo-server"), "promo-server")
}

// TestIngestSurvivesSIGKILL sends batches from concurrent clients, kills the
// server with SIGKILL mid-run, restarts it, and checks that every
// acknowledged batch is stored, whole, and counted exactly once.
func TestIngestSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	bin := buildServer(t)
	t.Run("fs", func(t *testing.T) {
		dir := t.TempDir()
		b, _ := fs.New(dir)
		crashTest(t, bin, []string{"-store.dir=" + dir}, nil, b)
	})
	t.Run("s3", func(t *testing.T) {
		srv := s3server.Start(t)
		bucket := srv.NewBucketName()
		b, err := s3.New(context.Background(), s3.Config{Endpoint: srv.Endpoint, Bucket: bucket, Insecure: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CreateBucket: true})
		if err != nil {
			t.Fatal(err)
		}
		crashTest(t, bin, []string{"-store.type=s3", "-store.s3.endpoint=" + srv.Endpoint, "-store.s3.bucket=" + bucket, "-store.s3.insecure"},
			[]string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey}, b)
	})
}

func crashTest(t *testing.T, bin string, store, env []string, bkt registry.Bucket) {
	token := "crash-5c9e2a7f1b4d8036a9e2c5f7b1d4a803"
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte(token+" user loadgen\n"), 0o600)
	grpcAddr := freeAddr(t)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, append(store, "-grpc.addr="+grpcAddr, "-http.addr=", "-auth.tokens-file="+tokens, "-ingest.max-delay=50ms")...)
		cmd.Env = append(os.Environ(), env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	server := start()
	defer func() { server.Process.Kill(); server.Wait() }()

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := promov1.NewEventServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)

	const workers, perBatch = 8, 40
	var mu sync.Mutex
	acked := map[string]bool{} // batch id -> acknowledged
	sent := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				batch := fmt.Sprintf("w%d-b%d", w, seq)
				req := &promov1.IngestRequest{}
				for i := 0; i < perBatch; i++ {
					req.Events = append(req.Events, &promov1.Event{EventId: fmt.Sprintf("%s-e%d", batch, i), Type: promov1.EventType_EVENT_TYPE_VIEW,
						Time: timestamppb.Now(), UserId: fmt.Sprintf("u%d", w), ItemId: fmt.Sprintf("i%d", i)})
				}
				// Like a real client, retry a batch until it is acknowledged:
				// a retry of a batch stored just before the crash must not be
				// counted twice.
				for {
					cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					resp, err := client.Ingest(cctx, req, grpc.WaitForReady(true))
					cancel()
					mu.Lock()
					sent++
					if err == nil {
						acked[batch] = resp.Accepted+resp.Duplicate == perBatch
					}
					mu.Unlock()
					if err == nil {
						break
					}
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
		}(w)
	}
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, ok := range acked {
			if ok {
				n++
			}
		}
		return n
	}
	waitAcks := func(atLeast int) {
		deadline := time.Now().Add(15 * time.Second)
		for ackedCount() < atLeast && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitAcks(20) // a loaded CI machine may take a while to start the server
	time.Sleep(300 * time.Millisecond)
	server.Process.Signal(syscall.SIGKILL) // no chance to flush anything
	server.Wait()
	ackedBeforeKill := ackedCount()
	time.Sleep(300 * time.Millisecond)
	server = start()
	waitAcks(ackedBeforeKill + 20)
	close(stop)
	wg.Wait()
	server.Process.Signal(syscall.SIGTERM)
	server.Wait()

	// Raw view: count each event id in the stored batch objects.
	raw := map[string]int{}
	names, err := eventlog.Batches(context.Background(), bkt)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := eventlog.ReadBatch(context.Background(), bkt, n, func(e *eventlog.Event) error { raw[e.ID]++; return nil }); err != nil {
			t.Fatalf("batch %s unreadable after the crash: %v", n, err)
		}
	}
	// Training's view: de-duplicated.
	counted := map[string]int{}
	if _, err := eventlog.Scan(context.Background(), bkt, func(e *eventlog.Event) error { counted[e.ID]++; return nil }); err != nil {
		t.Fatal(err)
	}
	missing, partial := 0, 0
	for batch, ok := range acked {
		if !ok {
			continue
		}
		for i := 0; i < perBatch; i++ {
			id := fmt.Sprintf("%s-e%d", batch, i)
			if raw[id] == 0 {
				missing++
			}
			if counted[id] != 1 {
				t.Errorf("acknowledged event %s counted %d times by training", id, counted[id])
			}
		}
	}
	// Requests are stored whole or not at all.
	perRequest := map[string]int{}
	for id := range raw {
		var w, b, e int
		fmt.Sscanf(id, "w%d-b%d-e%d", &w, &b, &e)
		perRequest[fmt.Sprintf("w%d-b%d", w, b)]++
	}
	for batch, n := range perRequest {
		if n != perBatch {
			partial++
			t.Errorf("request %s is partially stored: %d of %d events", batch, n, perBatch)
		}
	}
	if missing > 0 {
		t.Fatalf("%d events of acknowledged batches are missing", missing)
	}
	if ackedBeforeKill == 0 || ackedCount() <= ackedBeforeKill {
		t.Fatalf("the run did not exercise both lives of the server: %d acked before the kill, %d in all", ackedBeforeKill, ackedCount())
	}
	t.Logf("%d requests sent, %d acknowledged (%d before SIGKILL); all acknowledged events stored and counted once; %d batch objects", sent, ackedCount(), ackedBeforeKill, len(names))
}
