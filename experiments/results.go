package experiments

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// A Row is one line of results.jsonl: a row of a table.
type Row struct {
	Table  string         `json:"table"`
	Values map[string]any `json:"values"`
}

// Results are the rows of a run, as read back from results.jsonl.
type Results []Row

// Rows returns the rows of table whose values equal every key of match.
func (rs Results) Rows(table string, match map[string]any) []Row {
	var out []Row
	for _, r := range rs {
		if r.Table != table {
			continue
		}
		ok := true
		for k, v := range match {
			if fmt.Sprint(r.Values[k]) != fmt.Sprint(v) {
				ok = false
			}
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

// Float returns the numeric value key of the one row of table matching
// match, and whether there was exactly one and it was a number. JSON has no
// NaN or infinity: those are recorded as the strings "NaN", "+Inf", "-Inf"
// and read back as such.
func (rs Results) Float(table string, match map[string]any, key string) (float64, bool) {
	rows := rs.Rows(table, match)
	if len(rows) != 1 {
		return math.NaN(), false
	}
	return rows[0].Float(key)
}

// Float returns the row's numeric value key.
func (r Row) Float(key string) (float64, bool) {
	switch v := r.Values[key].(type) {
	case float64:
		return v, true
	case string:
		switch v {
		case "NaN":
			return math.NaN(), true
		case "+Inf":
			return math.Inf(1), true
		case "-Inf":
			return math.Inf(-1), true
		}
	}
	return math.NaN(), false
}

// jsonValue makes v encodable: non-finite floats become strings.
func jsonValue(v any) any {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case float32:
		f = float64(x)
	default:
		return v
	}
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}

// encodeResults is results.jsonl's text.
func encodeResults(rows []Row) ([]byte, error) {
	var buf bytes.Buffer
	for _, r := range rows {
		vals := map[string]any{}
		for k, v := range r.Values {
			vals[k] = jsonValue(v)
		}
		line, err := json.Marshal(Row{Table: r.Table, Values: vals})
		if err != nil {
			return nil, fmt.Errorf("results: table %s: %v", r.Table, err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

// ReadResults reads a results.jsonl file.
func ReadResults(path string) (Results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs Results
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for n := 1; sc.Scan(); n++ {
		var r Row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		rs = append(rs, r)
	}
	return rs, sc.Err()
}
