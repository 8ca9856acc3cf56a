package cpu

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestArenaHugePages checks that a large arena starts on a huge page and,
// where the kernel lets a process advise it, is advised for transparent
// huge pages (VmFlags hg in /proc/self/smaps).
func TestArenaHugePages(t *testing.T) {
	needLLVM(t)
	x := load(t, parseFunc(t, "%x: f32[1024,1024]", "  %0 = exp %x : f32[1024,1024]"))
	p := uintptr(x.res.arena)
	if p%(2<<20) != 0 {
		t.Fatalf("arena at %#x: not 2 MiB aligned", p)
	}
	if mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil || strings.Contains(string(mode), "[never]") {
		t.Skipf("transparent huge pages off here (%q, %v)", mode, err)
	}
	flags, err := vmFlags(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(" "+flags+" ", " hg ") {
		t.Errorf("arena at %#x: VmFlags %q, want hg (MADV_HUGEPAGE)", p, flags)
	}
}

// vmFlags returns the VmFlags line of the mapping of this process that
// holds address p.
func vmFlags(p uintptr) (string, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return "", err
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x", &lo, &hi); n == 2 { // a mapping's first line
			in = lo <= p && p < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmFlags:")), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no mapping holds %#x", p)
}
