package parser

import (
	_ "embed"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/alecthomas/participle/v2/lexer"

	"xlc/internal/suggest"
	"xlc/ir"
)

//go:embed stdlib.xl
var stdlibSrc []byte

var stdlib = sync.OnceValues(func() (*File, error) { return parseFile("stdlib.xl", stdlibSrc) })

// StdlibSource is the text of the standard library shipped with the binary.
func StdlibSource() []byte { return stdlibSrc }

// Define is a config override from the command line: -D key=value.
type Define struct{ Key, Value string }

// Setting is one config or train value after overrides.
type Setting struct {
	Name  string
	Value any // int64, float64, bool, string or []any
	// Pos is where the value was written (Filename "command line" for -D).
	Pos lexer.Position
}

// Program is an elaborated model: its forward function and its settings.
type Program struct {
	Name   string
	Func   *ir.Func
	Config []Setting
	// Train holds the train section's values, then -D overrides of train keys.
	Train []Setting
	// Taps are the values named with tap("name", x), for gradients with
	// respect to intermediates and for reading them out (e.g. logits).
	Taps map[string]*ir.Value
}

// closure is a def with the scope it was defined in.
type closure struct {
	def *Def
	env *scope
}

type elab struct {
	srcs      map[string][]byte
	b         *ir.Builder
	global    *scope // top-level defs and config values
	path      []string
	segs      map[string]int
	stack     []*Def
	calls     []*call
	irNames   map[string]claimed // the IR parameter names taken: inputs, params, the rng key
	repeats   int                // repeat iterations counted so far (at most maxRepeatIterations)
	outputs   []string
	outVals   []*ir.Value
	inputs    int
	rngKey    *ir.Value
	taps      map[string]*ir.Value
	rngStream int
	pos       lexer.Position
}

// Compile parses and elaborates the model in src into IR. A define whose key
// is a config name overrides that config value; one whose key is in the
// train section or in trainKeys (the trainer's known settings) overrides or
// adds that train setting; any other key is an error. The returned error,
// if any, is an *Error with file:line:col.
func Compile(filename string, src []byte, defines []Define, trainKeys ...string) (*Program, error) {
	lib, err := stdlib()
	if err != nil {
		return nil, fmt.Errorf("stdlib: %v", err)
	}
	f, err := parseFile(filename, src)
	if err != nil {
		return nil, err
	}
	e := &elab{
		srcs:    map[string][]byte{filename: src, "stdlib.xl": stdlibSrc},
		global:  newScope(nil),
		segs:    map[string]int{},
		irNames: map[string]claimed{rngKeyName: {what: "random key"}},
		taps:    map[string]*ir.Value{},
	}
	for _, d := range lib.Decls {
		if d.Def != nil {
			e.global.vars[d.Def.Name] = &closure{d.Def, e.global}
		}
	}
	var model *Model
	var train *Section
	prog := &Program{Taps: e.taps}
	userDefs := map[string]bool{}
	for _, d := range f.Decls {
		switch {
		case d.Def != nil:
			if userDefs[d.Def.Name] {
				return nil, e.errf(d.Def.Pos, "function %s defined twice", d.Def.Name)
			}
			userDefs[d.Def.Name] = true
			e.global.vars[d.Def.Name] = &closure{d.Def, e.global}
		case d.Model != nil:
			if model != nil {
				return nil, e.errf(d.Model.Pos, "a file holds one model; %s is the second", d.Model.Name)
			}
			model = d.Model
		case d.Train != nil:
			if d.Train.Kind != "train" {
				return nil, e.errf(d.Train.Pos, "a config section belongs inside the model")
			}
			if train != nil {
				return nil, e.errf(d.Train.Pos, "train section given twice")
			}
			train = d.Train
		}
	}
	if model == nil {
		return nil, e.errf(f.Pos, "no model in this file (want `model name { ... }`)")
	}
	prog.Name = model.Name
	e.b = ir.NewBuilder("forward")
	known := map[string]bool{}
	for _, k := range trainKeys {
		known[k] = true
	}
	if train != nil {
		for _, en := range train.Entries {
			known[en.Name] = true
		}
	}
	cfg, rest, err := e.config(model, defines, known)
	if err != nil {
		return nil, err
	}
	prog.Config = cfg
	if prog.Train, err = e.trainSettings(train, rest); err != nil {
		return nil, err
	}
	ms := newScope(e.global)
	for _, st := range model.Items {
		if st.Config != nil {
			continue
		}
		if _, err := e.stmt(st, ms, true); err != nil {
			return nil, err
		}
	}
	if len(e.outputs) == 0 {
		return nil, e.errf(model.EndPos, "model %s has no output (want `output loss = ...`)", model.Name)
	}
	e.b.Return(e.outputs, e.outVals...)
	if err := e.b.Err(); err != nil {
		return nil, e.errf(e.pos, "%v", err)
	}
	// Inputs first, then parameters, then the rng key: a stable order.
	prog.Func = e.b.F
	sortParams(prog.Func)
	if err := prog.Func.Verify(); err != nil {
		return nil, fmt.Errorf("%s: internal error: elaborated IR does not verify: %v", filename, err)
	}
	return prog, nil
}

func sortParams(f *ir.Func) {
	rank := func(v *ir.Value) int {
		switch v.Role() {
		case "input":
			return 0
		case "param":
			return 1
		}
		return 2
	}
	sort.SliceStable(f.Params, func(i, j int) bool { return rank(f.Params[i]) < rank(f.Params[j]) })
}

// errf makes a diagnostic at pos. An error inside the standard library is
// reported at the innermost call in the user's file that led there.
func (e *elab) errf(pos lexer.Position, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if pos.Filename == "stdlib.xl" {
		for i := len(e.calls) - 1; i >= 0; i-- {
			if c := e.calls[i]; c.pos.Filename != "stdlib.xl" {
				msg = fmt.Sprintf("in %s: %s (stdlib.xl:%d:%d)", c.name, msg, pos.Line, pos.Column)
				pos = c.pos
				break
			}
		}
	}
	return &Error{Pos: pos, Msg: msg, src: e.srcs[pos.Filename]}
}

// config evaluates the model's config section in order, applying overrides
// as each name is defined so later entries see them.
func (e *elab) config(m *Model, defines []Define, trainKeys map[string]bool) ([]Setting, []Define, error) {
	over := map[string]string{}
	for _, d := range defines {
		over[d.Key] = d.Value
	}
	var out []Setting
	seen := 0
	for _, st := range m.Items {
		if st.Config == nil {
			continue
		}
		if st.Config.Kind != "config" {
			return nil, nil, e.errf(st.Config.Pos, "the train section goes after the model, not inside it")
		}
		if seen++; seen > 1 {
			return nil, nil, e.errf(st.Config.Pos, "config section given twice")
		}
		for _, en := range st.Config.Entries {
			if _, dup := e.global.vars[en.Name]; dup {
				return nil, nil, e.errf(en.Pos, "config %s defined twice or shadows a function", en.Name)
			}
			v, err := e.expr(en.Value, e.global)
			if err != nil {
				return nil, nil, err
			}
			switch v.(type) {
			case int64, float64, bool, string:
			default:
				return nil, nil, e.errf(en.Value.Pos, "config %s must be a number, bool or string, have %s", en.Name, describe(v))
			}
			pos := en.Pos
			if s, ok := over[en.Name]; ok {
				if v, err = overrideValue(en.Name, s, v); err != nil {
					return nil, nil, commandLineError(err.Error())
				}
				delete(over, en.Name)
				pos = commandLine
			}
			e.global.vars[en.Name] = v
			out = append(out, Setting{en.Name, v, pos})
		}
	}
	var rest []Define
	var unknown, have []string
	for _, d := range defines {
		if _, ok := over[d.Key]; !ok {
			continue
		}
		if trainKeys[d.Key] {
			rest = append(rest, d)
		} else {
			unknown = append(unknown, d.Key)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		for _, s := range out {
			have = append(have, s.Name)
		}
		cands := append([]string(nil), have...)
		for k := range trainKeys {
			cands = append(cands, k)
		}
		if h := suggest.Hint(unknown[0], cands); h != "" {
			return nil, nil, commandLineError("-D " + unknown[0] + ": unknown config key" + h)
		}
		msg := fmt.Sprintf("-D %s: unknown config key (the model has: %s)", unknown[0], strings.Join(have, ", "))
		if len(trainKeys) > 0 {
			msg += "; nor is it a train setting"
		}
		return nil, nil, commandLineError(msg)
	}
	return out, rest, nil
}

var commandLine = lexer.Position{Filename: "command line", Line: 1, Column: 1}

func commandLineError(msg string) error { return &Error{Pos: commandLine, Msg: msg} }

// trainSettings evaluates the train section (its values may use config
// names) and applies the -D overrides of train keys.
func (e *elab) trainSettings(train *Section, defines []Define) ([]Setting, error) {
	var out []Setting
	index := map[string]int{}
	if train != nil {
		for _, en := range train.Entries {
			if _, dup := index[en.Name]; dup {
				return nil, e.errf(en.Pos, "train setting %s given twice", en.Name)
			}
			v, err := e.expr(en.Value, e.global)
			if err != nil {
				return nil, err
			}
			switch v.(type) {
			case int64, float64, bool, string, []any:
			default:
				return nil, e.errf(en.Value.Pos, "train setting %s must be a number, bool, string or list, have %s", en.Name, describe(v))
			}
			index[en.Name] = len(out)
			out = append(out, Setting{en.Name, v, en.Pos})
		}
	}
	for _, d := range defines {
		i, ok := index[d.Key]
		if !ok {
			index[d.Key] = len(out)
			out = append(out, Setting{d.Key, inferValue(d.Value), commandLine})
			continue
		}
		v := inferValue(d.Value)
		if _, isStr := out[i].Value.(string); isStr {
			v = d.Value
			if u, err := strconv.Unquote(d.Value); err == nil {
				v = u
			}
		} else if _, isList := out[i].Value.([]any); !isList {
			var err error
			if v, err = overrideValue(d.Key, d.Value, out[i].Value); err != nil {
				return nil, commandLineError(err.Error())
			}
		}
		out[i] = Setting{d.Key, v, commandLine}
	}
	return out, nil
}

// inferValue reads a -D value with no default to go by: an integer, a
// number, a bool, a comma-separated list, else a string.
func inferValue(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	if b, err := strconv.ParseBool(s); err == nil {
		return b
	}
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	if strings.Contains(s, ",") {
		var l []any
		for _, part := range strings.Split(s, ",") {
			l = append(l, inferValue(strings.TrimSpace(part)))
		}
		return l
	}
	return s
}

// overrideValue parses a -D value with the kind of the default it replaces.
func overrideValue(name, s string, def any) (any, error) {
	bad := func(want string) error { return fmt.Errorf("-D %s=%s: want %s", name, s, want) }
	switch def.(type) {
	case int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, bad("an integer")
		}
		return n, nil
	case float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, bad("a number")
		}
		return f, nil
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, bad("true or false")
		}
		return b, nil
	}
	if u, err := strconv.Unquote(s); err == nil {
		return u, nil
	}
	return s, nil
}
