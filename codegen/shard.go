package codegen

import (
	"os"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
)

// Sharding bounds: modules under shardMinBytes of text are built whole
// (a process pair's start-up outweighs the gain), and GOMAXPROCS gives at
// most maxShards shards.
const (
	shardMinBytes = 64 << 10
	maxShards     = 8
)

// buildShards is how many shards SharedObject splits a module of size bytes into
// (see SharedObject); 1 means whole.
func buildShards(size int) int {
	if s := os.Getenv("XLC_BUILD_SHARDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 1 {
			return n
		}
	}
	if size < shardMinBytes {
		return 1
	}
	return min(goruntime.GOMAXPROCS(0), maxShards)
}

// llEntity is one top-level entity of a module's text: a header line
// (target, type or attribute group: copied into every shard), a global, a
// function declaration or a function definition.
type llEntity struct {
	kind  byte // 'h' header, 'g' global, 'd' declaration, 'f' definition
	name  string
	text  string // its lines, each ending in a newline
	local bool   // internal or private linkage
	// dup: the entity may be copied into every shard that uses it: a
	// local constant, or a local noinline function using only
	// declarations and other dup entities (the out-of-memory handler), whose
	// callers' code does not depend on how many callers it has. (Where all
	// of a copy's callers pass the same message, opt propagates it into
	// the copy: only that cold path's argument set-up differs.)
	dup  bool
	refs []string // the global names (@name) it mentions
}

// splitModule splits the module text ll into at most n self-contained
// module texts whose definitions are together those of ll, or returns nil
// when it cannot (fewer than two parts, or text it does not recognize:
// only llir's output is split). Definitions that reference one another are
// kept in one shard (union-find over references), so that every function is
// optimized with the same callees and callers as in the whole module and
// its code is the same; only dup entities (see llEntity) are copied into
// each shard that uses them, and each shard declares the external
// functions it calls. Parts are balanced by text size, largest first, and
// keep the entities' order.
func splitModule(ll string, n int) []string {
	var ents []*llEntity
	lines := strings.SplitAfter(ll, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trim := strings.TrimRight(line, "\n")
		switch {
		case strings.TrimSpace(trim) == "":
		case strings.HasPrefix(trim, "target ") || strings.HasPrefix(trim, "source_filename ") ||
			strings.HasPrefix(trim, "attributes #") || strings.HasPrefix(trim, "%"):
			if strings.Contains(trim, "@") {
				return nil
			}
			ents = append(ents, &llEntity{kind: 'h', text: ensureNL(line)})
		case strings.HasPrefix(trim, "!"):
			// Metadata (loop hints): copied into every shard.
			if strings.Contains(trim, "@") {
				return nil
			}
			ents = append(ents, &llEntity{kind: 'h', text: ensureNL(line)})
		case strings.HasPrefix(trim, "@"):
			name, rest, ok := strings.Cut(trim[1:], " = ")
			if !ok || !isLLName(name) {
				return nil
			}
			e := &llEntity{kind: 'g', name: name, text: ensureNL(line)}
			e.local = strings.HasPrefix(rest, "private ") || strings.HasPrefix(rest, "internal ")
			e.dup = e.local && strings.Contains(rest, " constant ")
			if e.refs, ok = llRefs(rest); !ok {
				return nil
			}
			ents = append(ents, e)
		case strings.HasPrefix(trim, "declare "):
			name, ok := llFuncName(trim)
			if !ok {
				return nil
			}
			ents = append(ents, &llEntity{kind: 'd', name: name, text: ensureNL(line)})
		case strings.HasPrefix(trim, "define "):
			name, ok := llFuncName(trim)
			if !ok {
				return nil
			}
			var b strings.Builder
			b.WriteString(line)
			for i++; i < len(lines) && strings.TrimRight(lines[i], "\n") != "}"; i++ {
				b.WriteString(lines[i])
			}
			if i == len(lines) {
				return nil
			}
			b.WriteString("}\n")
			e := &llEntity{kind: 'f', name: name, text: b.String()}
			e.local = strings.HasPrefix(trim, "define internal ") || strings.HasPrefix(trim, "define private ")
			_, attrs, _ := strings.Cut(trim, ")")
			e.dup = e.local && strings.Contains(" "+attrs+" ", " noinline ")
			if e.refs, ok = llRefs(e.text); !ok {
				return nil
			}
			ents = append(ents, e)
		default:
			return nil
		}
	}
	byName := map[string]int{}
	for i, e := range ents {
		if e.kind != 'h' {
			if _, twice := byName[e.name]; twice {
				return nil
			}
			byName[e.name] = i
		}
	}
	// A dup function stays dup only while everything it uses is a
	// declaration or dup.
	for changed := true; changed; {
		changed = false
		for _, e := range ents {
			if e.kind != 'f' || !e.dup {
				continue
			}
			for _, r := range e.refs {
				if j, ok := byName[r]; ok && ents[j].kind != 'd' && !ents[j].dup {
					e.dup, changed = false, true
					break
				}
			}
		}
	}
	// Union the definitions and globals that are not dup by reference.
	parent := make([]int, len(ents))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owned := func(e *llEntity) bool { return (e.kind == 'f' || e.kind == 'g') && !e.dup }
	for i, e := range ents {
		if !owned(e) {
			continue
		}
		for _, r := range e.refs {
			if j, ok := byName[r]; ok && owned(ents[j]) {
				parent[find(i)] = find(j)
			}
		}
	}
	var clusters []int // roots, by first member
	size := map[int]int{}
	for i, e := range ents {
		if !owned(e) {
			continue
		}
		r := find(i)
		if _, ok := size[r]; !ok {
			clusters = append(clusters, r)
		}
		size[r] += len(e.text)
	}
	n = min(n, len(clusters))
	if n < 2 {
		return nil
	}
	sort.SliceStable(clusters, func(a, b int) bool { return size[clusters[a]] > size[clusters[b]] })
	shardOf := map[int]int{} // cluster root -> shard
	load := make([]int, n)
	for _, r := range clusters {
		best := 0
		for s := range load {
			if load[s] < load[best] {
				best = s
			}
		}
		shardOf[r] = best
		load[best] += size[r]
	}
	out := make([]string, n)
	for s := range out {
		in := make([]bool, len(ents))
		var mark func(i int)
		mark = func(i int) {
			if in[i] {
				return
			}
			in[i] = true
			for _, r := range ents[i].refs {
				if j, ok := byName[r]; ok {
					mark(j)
				}
			}
		}
		for i, e := range ents {
			if owned(e) && shardOf[find(i)] == s {
				mark(i)
			}
		}
		var b strings.Builder
		for i, e := range ents {
			if e.kind == 'h' || in[i] {
				if b.Len() > 0 && e.kind == 'f' {
					b.WriteString("\n")
				}
				b.WriteString(e.text)
			}
		}
		out[s] = b.String()
	}
	return out
}

func ensureNL(line string) string {
	if strings.HasSuffix(line, "\n") {
		return line
	}
	return line + "\n"
}

// isLLName reports whether s is an unquoted LLVM global name.
func isLLName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLLNameByte(s[i]) {
			return false
		}
	}
	return true
}

func isLLNameByte(c byte) bool {
	return c == '_' || c == '.' || c == '$' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// llFuncName is the name in a define or declare line: @name( .
func llFuncName(line string) (string, bool) {
	at := strings.IndexByte(line, '@')
	if at < 0 {
		return "", false
	}
	end := strings.IndexByte(line[at:], '(')
	if end < 0 {
		return "", false
	}
	name := line[at+1 : at+end]
	return name, isLLName(name)
}

// llRefs lists the global names mentioned in text (@name), in order, once
// each; false for a quoted name (@"..."), which splitModule does not handle.
// A mention inside a string constant is harmless: it can only join
// entities or copy a declaration.
func llRefs(text string) ([]string, bool) {
	var refs []string
	seen := map[string]bool{}
	for i := 0; i < len(text); i++ {
		if text[i] != '@' {
			continue
		}
		if i+1 < len(text) && text[i+1] == '"' {
			return nil, false
		}
		j := i + 1
		for j < len(text) && isLLNameByte(text[j]) {
			j++
		}
		if name := text[i+1 : j]; name != "" && !seen[name] {
			seen[name] = true
			refs = append(refs, name)
		}
		i = j - 1
	}
	return refs, true
}
