package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The files a run writes into its folder.
const (
	MetricsName = "metrics.jsonl"
	PlotName    = "loss.png"
)

var runFiles = []string{CheckpointName, MetricsName, PlotName}

// heldRunFiles lists the run files that dir holds.
func heldRunFiles(dir string) []string {
	var held []string
	for _, name := range runFiles {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			held = append(held, name)
		}
	}
	return held
}

// removeRunFiles deletes a run's files from dir, for --force.
func removeRunFiles(dir string) error {
	for _, name := range heldRunFiles(dir) {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// runNumbers maps each folder root/<model>-<n> to n.
func runNumbers(root, model string) (map[string]int, error) {
	entries, err := os.ReadDir(root)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(model) + `-([0-9]{1,9})$`)
	out := map[string]int{}
	for _, e := range entries {
		if m := re.FindStringSubmatch(e.Name()); m != nil && e.IsDir() {
			n, _ := strconv.Atoi(m[1])
			out[filepath.Join(root, e.Name())] = n
		}
	}
	return out, nil
}

// NextRunDir names the folder of a new run of model under root:
// root/<model>-<n>, with n one more than that of any such folder there (1
// for the first), so no run lands in another's folder. It creates nothing;
// Train with NewDir creates it, and fails if another run took it meanwhile.
func NextRunDir(root, model string) (string, error) {
	runs, err := runNumbers(root, model)
	if err != nil {
		return "", err
	}
	n := 0
	for _, k := range runs {
		n = max(n, k)
	}
	return filepath.Join(root, fmt.Sprintf("%s-%d", model, n+1)), nil
}

// NewestRunDir returns the folder root/<model>-<n> with the largest n that
// holds a checkpoint, the run --resume without a folder continues, or ""
// when there is none.
func NewestRunDir(root, model string) (string, error) {
	runs, err := runNumbers(root, model)
	if err != nil {
		return "", err
	}
	best, bestN := "", 0
	for dir, n := range runs {
		if _, err := os.Stat(filepath.Join(dir, CheckpointName)); err == nil && n > bestN {
			best, bestN = dir, n
		}
	}
	return best, nil
}

// CheckOutDir refuses a fresh run (neither Resume nor Force) into an
// OutDir that holds a run's files, saying what is there and how that run
// differs. Train checks it first; a caller may check it before announcing
// the run.
func CheckOutDir(opt TrainOptions) error {
	if held := heldRunFiles(opt.OutDir); !opt.Resume && !opt.Force && len(held) > 0 {
		return occupied(opt.OutDir, held, opt.Meta, opt.Seed)
	}
	return nil
}

// occupied is the error for a fresh run into dir, which holds the files
// held of another run: what is there and, from the checkpoint's metadata,
// how that run differs from this one (meta and seed).
func occupied(dir string, held []string, meta map[string]string, seed uint64) error {
	what := strings.Join(held, ", ")
	how := ""
	if held[0] == CheckpointName {
		there, err := CheckpointMeta(filepath.Join(dir, CheckpointName))
		if err != nil {
			what = strings.Replace(what, CheckpointName, CheckpointName+" (unreadable)", 1)
		} else {
			what = strings.Replace(what, CheckpointName, CheckpointName+" at step "+there["step"], 1)
			how = " " + runDiff(there, meta, strconv.FormatUint(seed, 10))
		}
	}
	return fmt.Errorf("%s holds a run (%s)%s; --resume continues it, --force replaces it, or train into another --out", dir, what, how)
}

// runDiff says how the run that wrote a checkpoint with metadata there
// differs from this one: model, settings, data and seed.
func runDiff(there, here map[string]string, seed string) string {
	var diffs []string
	switch {
	case there["model"] != here["model"]:
		diffs = append(diffs, fmt.Sprintf("another model (%s there, %s here)", orNone(there["model"]), orNone(here["model"])))
	case there["model_source"] != here["model_source"]:
		diffs = append(diffs, fmt.Sprintf("another source of model %s", here["model"]))
	}
	if a, b := settingsDiff(there["settings"], here["settings"]); a != b {
		diffs = append(diffs, fmt.Sprintf("other settings (%s there, %s here)", a, b))
	}
	if there["data"] != here["data"] {
		diffs = append(diffs, fmt.Sprintf("other data (%s there, %s here)", orNone(there["data"]), orNone(here["data"])))
	}
	if there["seed"] != seed {
		diffs = append(diffs, fmt.Sprintf("another seed (%s there, %s here)", orNone(there["seed"]), seed))
	}
	if len(diffs) == 0 {
		return "of the same model, settings, data and seed"
	}
	return "with " + strings.Join(diffs, ", ")
}

// settingsDiff renders the -D settings (JSON lists of {Key, Value}) of two
// runs that differ, each side only the keys whose values differ, "none" for
// a side without them.
func settingsDiff(there, here string) (string, string) {
	a, b := decodeSettings(there), decodeSettings(here)
	var keys []string
	seen := map[string]bool{}
	for _, s := range append(append([][2]string{}, a...), b...) {
		if !seen[s[0]] {
			seen[s[0]] = true
			keys = append(keys, s[0])
		}
	}
	lookup := func(l [][2]string, k string) (string, bool) {
		for _, s := range l {
			if s[0] == k {
				return s[1], true
			}
		}
		return "", false
	}
	var da, db []string
	for _, k := range keys {
		va, oka := lookup(a, k)
		vb, okb := lookup(b, k)
		if oka == okb && va == vb {
			continue
		}
		if oka {
			da = append(da, "-D "+k+"="+va)
		}
		if okb {
			db = append(db, "-D "+k+"="+vb)
		}
	}
	return orNone(strings.Join(da, " ")), orNone(strings.Join(db, " "))
}

// decodeSettings reads a checkpoint's settings; the last -D of a key wins.
func decodeSettings(s string) [][2]string {
	var defs []struct{ Key, Value string }
	json.Unmarshal([]byte(s), &defs) // a missing or damaged value reads as none
	var out [][2]string
	for _, d := range defs {
		replaced := false
		for i := range out {
			if out[i][0] == d.Key {
				out[i][1], replaced = d.Value, true
			}
		}
		if !replaced {
			out = append(out, [2]string{d.Key, d.Value})
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
