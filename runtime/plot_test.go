package runtime

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestPlotLosses(t *testing.T) {
	var train, val [][2]float64
	for s := 1; s <= 500; s++ {
		l := 5.5*math.Exp(-float64(s)/120) + 1.2 + 0.1*math.Sin(float64(s))
		train = append(train, [2]float64{float64(s), l})
		if s%50 == 0 {
			val = append(val, [2]float64{float64(s), l + 0.15})
		}
	}
	train[7][1] = math.NaN() // skipped, not an error
	path := filepath.Join(t.TempDir(), "loss.png")
	err := PlotLosses(path, map[string][][2]float64{"train loss": train, "val loss": val, "empty": nil}, "gpt (builtin text)")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 10_000 || len(b) > 2_000_000 {
		t.Fatalf("%d bytes starting %q", len(b), b[:min(8, len(b))])
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if r := img.Bounds(); r.Dx() < 500 || r.Dy() < 300 {
		t.Fatalf("image %v", r)
	}
	if os.Getenv("XLC_KEEP_PLOT") != "" {
		os.WriteFile(os.Getenv("XLC_KEEP_PLOT"), b, 0o644)
	}
	// No data at all still gives an (empty) chart.
	if err := PlotLosses(path, nil, "nothing"); err != nil {
		t.Fatal(err)
	}
}
