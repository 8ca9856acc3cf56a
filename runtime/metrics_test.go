package runtime

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMetricsWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	w, err := OpenMetrics(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	rows := []map[string]float64{
		{"loss": 2.31, "tokens_per_s": 1234.5, "lr": 3e-4},
		{"loss": math.NaN(), "grad_norm": math.Inf(1), "min": math.Inf(-1), "step": 99},
		{"val loss": 1e21, "n": -0.5},
	}
	for i, r := range rows {
		if err := w.Write(int64(10*(i+1)), r); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	b, _ := os.ReadFile(path)
	want := `{"step":10,"loss":2.31,"lr":0.0003,"tokens_per_s":1234.5}
{"step":20,"grad_norm":"+Inf","loss":"NaN","min":"-Inf"}
{"step":30,"n":-0.5,"val loss":1e+21}
`
	if string(b) != want {
		t.Fatalf("file\n%s\nwant\n%s", b, want)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("invalid JSON line %s", line)
		}
	}
	got, err := ReadMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0]["step"] != 10 || got[0]["loss"] != 2.31 || !math.IsNaN(got[1]["loss"]) ||
		!math.IsInf(got[1]["grad_norm"], 1) || !math.IsInf(got[1]["min"], -1) || got[1]["step"] != 20 || got[2]["val loss"] != 1e21 {
		t.Fatalf("ReadMetrics: %v", got)
	}
}

func TestMetricsResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	w, _ := OpenMetrics(path, 0)
	for s := int64(1); s <= 10; s++ {
		w.Write(s, map[string]float64{"loss": float64(s)})
	}
	w.Close()
	// A torn last line from a killed run.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"step":11,"lo`)
	f.Close()
	if rows, err := ReadMetrics(path); err != nil || len(rows) != 10 {
		t.Fatalf("ReadMetrics with a torn line: %d rows, %v", len(rows), err)
	}
	// Resume from the checkpoint at step 6: steps 7 on are dropped.
	w, err := OpenMetrics(path, 6)
	if err != nil {
		t.Fatal(err)
	}
	for s := int64(7); s <= 12; s++ {
		w.Write(s, map[string]float64{"loss": -float64(s)})
	}
	w.Close()
	rows, err := ReadMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 12 {
		t.Fatalf("%d rows after resuming", len(rows))
	}
	for i, r := range rows {
		s := float64(i + 1)
		if want := map[bool]float64{true: s, false: -s}[s <= 6]; r["step"] != s || r["loss"] != want {
			t.Fatalf("row %d: %v", i, r)
		}
	}
	// A fresh run (0) empties it.
	w, _ = OpenMetrics(path, 0)
	w.Close()
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("fresh run kept %q", b)
	}
}

func TestMetricsErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ data, want string }{
		{"{\"step\":1}\nnot json\n{\"step\":2}\n", "metrics.jsonl:2: invalid character"},
		{"{\"step\":1,\"loss\":\"high\"}\n", `metrics.jsonl:1: loss: "high" is not a number`},
		{"{\"step\":1,\"loss\":[1]}\n", "metrics.jsonl:1: loss: [1] is not a number"},
		{"{\"loss\":1}\n", "metrics.jsonl:1: no step"},
		{"[1]\n", "metrics.jsonl:1: json: cannot unmarshal array"},
	} {
		path := filepath.Join(dir, "metrics.jsonl")
		os.WriteFile(path, []byte(tc.data), 0o644)
		_, err := ReadMetrics(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadMetrics(%q): %v, want %q", tc.data, err, tc.want)
		}
		if _, err := OpenMetrics(path, 5); err == nil {
			t.Errorf("OpenMetrics(%q) accepted it", tc.data)
		}
		if b, _ := os.ReadFile(path); string(b) != tc.data {
			t.Errorf("OpenMetrics changed a malformed file")
		}
	}
	if _, err := ReadMetrics(filepath.Join(dir, "none")); err == nil {
		t.Error("ReadMetrics of a missing file")
	}
}
