package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"

	"xlc/internal/atomicfile"
)

// MetricsWriter appends one JSON object per training step to a metrics file
// (metrics.jsonl in the output folder).
type MetricsWriter struct {
	f    *os.File
	path string
}

// OpenMetrics opens the metrics file at path for appending, creating it if
// needed. Existing lines with a step above truncateAfterStep are dropped
// first, rewriting the file atomically, so a run resumed from a checkpoint
// at step k (truncateAfterStep = k) does not repeat lines, and a fresh run
// (truncateAfterStep = 0) starts an empty file. A torn last line, left by a
// run killed mid-write, is dropped too; any other malformed line is an
// error.
func OpenMetrics(path string, truncateAfterStep int64) (*MetricsWriter, error) {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	if len(data) > 0 {
		var kept []byte
		err := eachMetricsLine(path, data, func(line []byte, m map[string]float64) {
			if m["step"] <= float64(truncateAfterStep) {
				kept = append(append(kept, line...), '\n')
			}
		})
		if err != nil {
			return nil, err
		}
		if len(kept) != len(data) {
			if err := atomicfile.Write(path, kept, 0o644); err != nil {
				return nil, err
			}
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &MetricsWriter{f: f, path: path}, nil
}

// Write appends the line {"step":step, ...} with the other keys of values
// in sorted order (a "step" key in values is ignored). Finite values are
// JSON numbers; NaN and ±Inf are the strings "NaN", "+Inf" and "-Inf", so
// the file stays valid JSON. The line goes to the file in one write.
func (w *MetricsWriter) Write(step int64, values map[string]float64) error {
	b := []byte(`{"step":`)
	b = strconv.AppendInt(b, step, 10)
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if k == "step" {
			continue
		}
		key, _ := json.Marshal(k)
		b = append(append(append(b, ','), key...), ':')
		b = appendMetric(b, values[k])
	}
	b = append(b, "}\n"...)
	if _, err := w.f.Write(b); err != nil {
		return fmt.Errorf("%s: %v", w.path, err)
	}
	return nil
}

func appendMetric(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(v, -1):
		return append(b, `"-Inf"`...)
	}
	num, _ := json.Marshal(v) // never fails for finite values
	return append(b, num...)
}

// Close closes the file.
func (w *MetricsWriter) Close() error { return w.f.Close() }

// ReadMetrics reads a metrics file written by MetricsWriter, one map per
// line with "step" among the keys and "NaN", "+Inf" and "-Inf" read back as
// those values. A torn last line is ignored; a malformed line, or a value
// that is neither a number nor one of those strings, is an error naming the
// file and line.
func ReadMetrics(path string) ([]map[string]float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []map[string]float64
	err = eachMetricsLine(path, data, func(_ []byte, m map[string]float64) { rows = append(rows, m) })
	return rows, err
}

// eachMetricsLine parses the lines of a metrics file and calls f with each
// line and its values; an unterminated last line that does not parse is
// skipped as torn.
func eachMetricsLine(path string, data []byte, f func(line []byte, m map[string]float64)) error {
	for n := 1; len(data) > 0; n++ {
		line, rest, found := bytes.Cut(data, []byte{'\n'})
		data = rest
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		m, err := parseMetricsLine(line)
		if err != nil {
			if !found {
				return nil // torn last line
			}
			return fmt.Errorf("%s:%d: %v", path, n, err)
		}
		f(line, m)
	}
	return nil
}

func parseMetricsLine(line []byte) (map[string]float64, error) {
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the JSON object")
	}
	if raw == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	if _, ok := raw["step"]; !ok {
		return nil, fmt.Errorf("no step")
	}
	m := make(map[string]float64, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case json.Number:
			f, err := v.Float64()
			if err != nil {
				return nil, fmt.Errorf("%s: %v", k, err)
			}
			m[k] = f
		case string:
			switch v {
			case "NaN":
				m[k] = math.NaN()
			case "+Inf":
				m[k] = math.Inf(1)
			case "-Inf":
				m[k] = math.Inf(-1)
			default:
				return nil, fmt.Errorf("%s: %q is not a number", k, v)
			}
		default:
			return nil, fmt.Errorf("%s: %v is not a number", k, v)
		}
	}
	return m, nil
}
