package main

import (
	"testing"

	"xlc/ir"
	"xlc/runtime"
)

// countingBackend counts its loads.
type countingBackend struct{ loads int }

func (*countingBackend) Name() string { return "counting" }
func (c *countingBackend) Load(*ir.Func) (runtime.Executable, error) {
	c.loads++
	return nil, nil
}

// TestBenchLoadsOnce checks that xlc bench's step is loaded (compiled,
// linked, opened) once: runtime.Bench gets the executable loaded for the
// "compiled and loaded in" figure.
func TestBenchLoadsOnce(t *testing.T) {
	f, err := ir.ParseFunc(`func @f(%x: f32[3]) -> (r: f32[3]) {
  %0 = neg %x : f32[3]
  return %0
}`)
	if err != nil {
		t.Fatal(err)
	}
	c := &countingBackend{}
	exe, _ := runtime.Interp{}.Load(f)
	l := &loadedBackend{Backend: c, f: f, exe: exe}
	if got, err := l.Load(f); err != nil || got != exe {
		t.Errorf("first Load = %v, %v; want the loaded executable", got, err)
	}
	if c.loads != 0 {
		t.Errorf("the backend loaded %d times, want 0", c.loads)
	}
	l.Load(f)
	if c.loads != 1 {
		t.Errorf("a second Load went to the backend %d times, want 1", c.loads)
	}
}
