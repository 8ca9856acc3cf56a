package runtime

import (
	"bytes"
	"fmt"
	"io/fs"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"xlc/runtime/interp"
)

// Dataset is a byte-level text corpus split into a training part and the
// validation part that follows it; each byte is one token (vocabulary 256).
type Dataset struct {
	Train, Val []byte
	Source     string // the path the text came from, or "builtin"
}

// LoadText reads the text at path: a file, taken whole, or every regular file
// under a directory in sorted walk order, skipping hidden files and folders
// (names starting with '.') and files that are not valid UTF-8 or contain NUL
// bytes, joined with '\n' between files. The last valFrac (0 < valFrac < 1)
// of the bytes is the validation split. Each split must hold at least minLen
// bytes (seq+1 for windows of seq tokens and their targets). A missing path,
// no data, or too little data is a one-line error naming the path.
func LoadText(path string, valFrac float64, minLen int) (*Dataset, error) {
	if !(valFrac > 0 && valFrac < 1) {
		return nil, fmt.Errorf("%s: validation fraction %g is not between 0 and 1", path, valFrac)
	}
	info, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%s: no such file or directory", path)
		}
		return nil, err
	}
	var data []byte
	skipped := 0
	if !info.IsDir() {
		if data, err = os.ReadFile(path); err != nil {
			return nil, err
		}
	} else {
		var parts [][]byte
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p != path && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
				skipped++
				return nil
			}
			if len(b) > 0 {
				parts = append(parts, b)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		data = bytes.Join(parts, []byte{'\n'})
	}
	if len(data) == 0 {
		if skipped > 0 {
			return nil, fmt.Errorf("%s: no text data (%d files skipped as binary or not UTF-8)", path, skipped)
		}
		return nil, fmt.Errorf("%s: no text data", path)
	}
	d := splitText(data, valFrac, path)
	if len(d.Train) < minLen || len(d.Val) < minLen {
		return nil, fmt.Errorf("%s: %d bytes is too little data: the splits have %d (train) and %d (validation) bytes, each needs at least %d",
			path, len(data), len(d.Train), len(d.Val), minLen)
	}
	return d, nil
}

// splitText cuts data into a Dataset whose last valFrac of the bytes is Val.
func splitText(data []byte, valFrac float64, source string) *Dataset {
	nVal := int(math.Round(float64(len(data)) * valFrac))
	cut := len(data) - nVal
	return &Dataset{Train: data[:cut:cut], Val: data[cut:], Source: source}
}

// Batch draws batch windows of seq+1 consecutive bytes from split ("train" or
// "val") at random offsets and returns the first seq bytes of each window as
// tokens and the last seq as targets, both row-major [batch, seq]. The draw
// depends only on (seed, step, split): window i starts at a position taken
// from the Philox block with key seed and counter (i, step, split), so a run
// resumed at step k sees exactly the batches of an uninterrupted run. Batch
// panics on an unknown split or one shorter than seq+1 bytes, which LoadText
// rules out for its minLen.
func (d *Dataset) Batch(split string, batch, seq int, seed uint64, step int64) (tokens, targets []int64) {
	var data []byte
	var tag uint32
	switch split {
	case "train":
		data, tag = d.Train, 1
	case "val":
		data, tag = d.Val, 2
	default:
		panic(fmt.Sprintf("runtime: Batch: unknown split %q (want train or val)", split))
	}
	if seq < 1 || batch < 0 || len(data) < seq+1 {
		panic(fmt.Sprintf("runtime: Batch: %s split of %d bytes has no window of seq+1 = %d bytes", split, len(data), seq+1))
	}
	starts := uint64(len(data) - seq) // window starts 0 .. len-seq-1
	key := [2]uint32{uint32(seed), uint32(seed >> 32)}
	tokens = make([]int64, batch*seq)
	targets = make([]int64, batch*seq)
	for i := 0; i < batch; i++ {
		w := interp.Philox(key, [4]uint32{uint32(i), uint32(step), uint32(uint64(step) >> 32), tag})
		r := uint64(w[0])<<32 | uint64(w[1])
		off, _ := bits.Mul64(r, starts) // r/2^64 scaled to [0, starts)
		win := data[off : off+uint64(seq)+1]
		for j := 0; j < seq; j++ {
			tokens[i*seq+j] = int64(win[j])
			targets[i*seq+j] = int64(win[j+1])
		}
	}
	return tokens, targets
}

// builtinSize is the least number of bytes BuiltinText generates.
const builtinSize = 240_000

// BuiltinText returns the corpus used when no data is given: about 240 kB of
// generated English-like prose, identical on every call and platform. It is
// built from the small word lists below with a splitmix64 generator seeded
// with a constant: paragraphs of three to seven sentences drawn from a dozen
// sentence patterns (statements, questions, dialogue, counts), with
// conjugated verbs, plurals and articles, and a chapter heading every forty
// paragraphs. The last tenth is the validation split; Source is "builtin".
func BuiltinText() *Dataset {
	g := &textGen{state: 0x786c63} // "xlc"
	var b strings.Builder
	for par := 0; b.Len() < builtinSize; par++ {
		if par%40 == 0 {
			fmt.Fprintf(&b, "Chapter %d\n\n", par/40+1)
		}
		n := 3 + g.intn(5)
		for s := 0; s < n; s++ {
			if s > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(g.sentence())
		}
		b.WriteString("\n\n")
	}
	return splitText([]byte(b.String()), 0.1, "builtin")
}

var (
	wNouns   = strings.Fields("river forest window garden letter lantern bridge mountain village teacher farmer sailor doctor child dog horse bird apple stone road book song story ship island city market tower candle storm cloud field door table clock mirror key coin boat wolf fox king queen soldier painter baker friend stranger traveller engine machine lamp valley lake harbour bell map")
	wAdjs    = strings.Fields("old young quiet bright dark small large cold warm green golden silver heavy gentle strange careful hungry tired happy lonely ancient broken narrow wide distant simple clever brave curious patient swift")
	wVerbs   = strings.Fields("see:saw find:found carry:carried watch:watched open:opened follow:followed build:built paint:painted remember:remembered visit:visited keep:kept lose:lost mend:mended wash:washed catch:caught touch:touched push:pushed hear:heard call:called leave:left hold:held")
	wAdvs    = strings.Fields("slowly quickly quietly gladly softly suddenly carefully always often rarely never again later together")
	wPreps   = strings.Fields("near behind beside under above across beyond inside through toward")
	wNames   = strings.Fields("Anna Ben Clara David Elena Frank Grace Henry Iris Jonas Karen Leo Maria Nora Oscar Paul")
	wNumbers = strings.Fields("two three four five six seven eight nine ten twelve")
	wSaid    = strings.Fields("said asked whispered answered replied called")
)

// textGen generates BuiltinText's sentences from a splitmix64 stream.
type textGen struct{ state uint64 }

func (g *textGen) next() uint64 {
	g.state += 0x9e3779b97f4a7c15
	z := g.state
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (g *textGen) intn(n int) int { return int(g.next() % uint64(n)) }

func (g *textGen) pick(words []string) string { return words[g.intn(len(words))] }

// verb returns a random verb as base form, third person and past tense.
func (g *textGen) verb() (base, third, past string) {
	base, past, _ = strings.Cut(g.pick(wVerbs), ":")
	switch {
	case strings.HasSuffix(base, "y"):
		third = base[:len(base)-1] + "ies"
	case strings.HasSuffix(base, "sh"), strings.HasSuffix(base, "ch"):
		third = base + "es"
	default:
		third = base + "s"
	}
	return base, third, past
}

// np returns a noun phrase: an article or "the", maybe an adjective, a noun.
func (g *textGen) np() string {
	w := g.pick(wNouns)
	if g.intn(2) == 0 {
		w = g.pick(wAdjs) + " " + w
	}
	if g.intn(3) == 0 {
		if strings.ContainsRune("aeiou", rune(w[0])) {
			return "an " + w
		}
		return "a " + w
	}
	return "the " + w
}

func plural(n string) string {
	switch {
	case strings.HasSuffix(n, "y") && !strings.ContainsRune("aeiou", rune(n[len(n)-2])):
		return n[:len(n)-1] + "ies"
	case strings.HasSuffix(n, "s"), strings.HasSuffix(n, "x"), strings.HasSuffix(n, "ch"):
		return n + "es"
	case n == "wolf":
		return "wolves"
	}
	return n + "s"
}

func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// sentence returns one sentence, capitalised and punctuated.
func (g *textGen) sentence() string {
	base, third, past := g.verb()
	_, third2, past2 := g.verb()
	switch g.intn(12) {
	case 0, 1:
		return capitalize(fmt.Sprintf("%s %s %s %s the %s.", g.np(), third, g.np(), g.pick(wPreps), g.pick(wNouns)))
	case 2, 3:
		return fmt.Sprintf("%s %s %s, and %s %s %s.", g.pick(wNames), past, g.np(), g.np(), past2, g.pick(wAdvs))
	case 4:
		return fmt.Sprintf("When %s %s %s, %s %s %s.", g.np(), third, g.np(), g.pick(wNames), third2, g.np())
	case 5:
		return fmt.Sprintf("Did %s %s %s %s %s?", g.pick(wNames), base, g.np(), g.pick(wPreps), g.np())
	case 6:
		return fmt.Sprintf("%q %s %s. %q", capitalize(fmt.Sprintf("%s %s %s", g.np(), third, g.np()))+",",
			g.pick(wNames), g.pick(wSaid), capitalize(g.pick(wAdvs))+" we will "+base+" it.")
	case 7:
		return fmt.Sprintf("%s counted %s %s %s %s.", g.pick(wNames), g.pick(wNumbers), plural(g.pick(wNouns)), g.pick(wPreps), g.np())
	case 8:
		return capitalize(fmt.Sprintf("%s was %s, but %s was %s.", g.np(), g.pick(wAdjs), g.np(), g.pick(wAdjs)))
	case 9:
		return fmt.Sprintf("%s %s %s %s, because %s %s.", g.pick(wNames), g.pick(wAdvs), past, g.np(), g.np(), past2)
	case 10:
		return fmt.Sprintf("There were %s %s %s %s.", g.pick(wNumbers), plural(g.pick(wNouns)), g.pick(wPreps), g.np())
	}
	return capitalize(fmt.Sprintf("%s %s %s before %s %s.", g.np(), past, g.np(), g.pick(wNames), past2))
}
