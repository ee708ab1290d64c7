package app

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress shows long steps: a bar when stderr is a terminal, otherwise a
// structured log line every 10% (and at most every few seconds), so logs
// collected by a scheduler are not flooded.
type progress struct {
	w        io.Writer
	log      *slog.Logger
	terminal bool
	mu       sync.Mutex
	step     string
	lastPct  int
	lastLog  time.Time
	started  time.Time
}

func newProgress(w io.Writer, log *slog.Logger) *progress {
	p := &progress{w: w, log: log}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.terminal = true
	}
	return p
}

func (p *progress) update(step string, done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if step != p.step {
		p.step, p.lastPct, p.started = step, -1, time.Now()
	}
	pct := 100
	if total > 0 {
		pct = done * 100 / total
	}
	if p.terminal {
		const width = 30
		fill := pct * width / 100
		fmt.Fprintf(p.w, "\r%-20s [%s%s] %3d%% (%d/%d)", step, strings.Repeat("#", fill), strings.Repeat(" ", width-fill), pct, done, total)
		if done == total {
			fmt.Fprintf(p.w, " %.1fs\n", time.Since(p.started).Seconds())
		}
		return
	}
	if pct/10 > p.lastPct/10 && (done == total || time.Since(p.lastLog) > 2*time.Second || p.lastPct < 0) {
		p.log.Info("progress", "step", step, "done", done, "total", total, "percent", pct)
		p.lastPct, p.lastLog = pct, time.Now()
	}
}
