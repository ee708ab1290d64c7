// Package s3server starts a real S3-compatible server (Versity S3 Gateway)
// on 127.0.0.1 for tests, so S3 code is exercised against a real
// implementation of the protocol rather than a mock.
//
// The binary is built once with a pinned `go install` into the git-ignored
// <repo>/.cache/bin (PROMO_S3_SERVER_BIN overrides the path). When it cannot
// be built or started the test fails with the reason: S3 tests are never
// skipped silently.
package s3server

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Module is the pinned server the harness installs.
const Module = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Server is a running S3-compatible server.
type Server struct {
	Endpoint  string // 127.0.0.1:port
	AccessKey string
	SecretKey string
	cmd       *exec.Cmd
	dataDir   string
}

var bucketSeq atomic.Int64

// NewBucketName returns a bucket name unique within this test process.
func (s *Server) NewBucketName() string {
	return fmt.Sprintf("test-%d-%d", os.Getpid(), bucketSeq.Add(1))
}

// Start installs (if needed) and starts a server for the duration of t.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("s3server: cannot install the S3 test server: %v", err)
	}
	s, err := start(bin, t.TempDir())
	if err != nil {
		t.Fatalf("s3server: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Binary returns the path of the server binary, building it when missing.
// Concurrent test processes share one build through a file lock.
func Binary() (string, error) {
	if p := os.Getenv("PROMO_S3_SERVER_BIN"); p != "" {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	binDir := filepath.Join(root, ".cache", "bin")
	bin := filepath.Join(binDir, "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(root, ".cache", "s3server.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil { // built by another process meanwhile
		return bin, nil
	}
	fmt.Fprintf(os.Stderr, "s3server: building %s (a few minutes, once)\n", Module)
	cmd := exec.Command("go", "install", Module)
	cmd.Env = append(os.Environ(), "GOBIN="+binDir, "GOWORK=off", "GOFLAGS=-mod=mod")
	cmd.Dir = os.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %v\n%s", Module, err, out)
	}
	return bin, nil
}

// RepoRoot walks up from the working directory to the folder with go.work,
// for tests that build or read files of the repository.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.work above the working directory; set PROMO_S3_SERVER_BIN")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(bin, tmp string) (*Server, error) {
	dataDir := filepath.Join(tmp, "s3data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the port may be taken between probe and bind
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{
			Endpoint:  "127.0.0.1:" + strconv.Itoa(port),
			AccessKey: "promo-test-key",
			SecretKey: "promo-test-secret-0123456789",
			dataDir:   dataDir,
		}
		logf, err := os.Create(filepath.Join(tmp, fmt.Sprintf("versitygw-%d.log", attempt)))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "--port", s.Endpoint, "posix", dataDir)
		cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, fmt.Errorf("start %s: %w", bin, err)
		}
		s.cmd = cmd
		if err := waitReady(s.Endpoint, cmd, 20*time.Second); err != nil {
			s.Stop()
			logf.Close()
			out, _ := os.ReadFile(logf.Name())
			lastErr = fmt.Errorf("server on %s did not come up: %v\n%s", s.Endpoint, err, strings.TrimSpace(string(out)))
			continue
		}
		logf.Close()
		return s, nil
	}
	return nil, lastErr
}

func waitReady(addr string, cmd *exec.Cmd, timeout time.Duration) error {
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
	}
}

// Stop kills the server.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
	}
}
