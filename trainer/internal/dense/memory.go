package dense

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// MaxOrder is the largest n whose n × n working set, at bytesPerEntry
// bytes per entry, fits in half of the memory available now: the other
// half is headroom for the garbage collector, which lets the heap grow
// past what is live, and for the rest of the process. It returns 0 when
// the available memory cannot be read.
func MaxOrder(bytesPerEntry float64) int {
	avail := availableMemory()
	if avail == 0 || bytesPerEntry <= 0 {
		return 0
	}
	return int(math.Sqrt(float64(avail) / 2 / bytesPerEntry))
}

// availableMemory is the least of what the kernel reports available
// (MemAvailable), what the cgroup (v2 or v1) still allows and GOMEMLIMIT,
// in bytes; 0 when none of them can be read (say, off Linux).
func availableMemory() uint64 {
	var avail uint64
	take := func(v uint64) {
		if v > 0 && (avail == 0 || v < avail) {
			avail = v
		}
	}
	take(memAvailable())
	for _, cg := range [][2]string{
		{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"},
		{"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"},
	} {
		limit, used := readUint(cg[0]), readUint(cg[1])
		// "max" and v1's near-2⁶³ sentinel both mean no limit.
		if limit > 0 && limit < 1<<60 && used < limit {
			take(limit - used)
		}
	}
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
		take(uint64(l))
	}
	return avail
}

func memAvailable() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := bytes.CutPrefix(s.Bytes(), []byte("MemAvailable:")); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(string(rest)), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// readUint reads a file holding one number; 0 when it is absent or holds
// something else ("max").
func readUint(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0
	}
	return v
}
