package parser

import (
	"bytes"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2/lexer"
)

// maxWidth is the widest line an `if` may be kept on in its one-line form.
const maxWidth = 100

// Format parses src and prints it canonically: two-space indentation, one
// statement or entry per line, single spaces around binary operators,
// parentheses and literals exactly as written, and every comment kept. A
// parse error is returned as is (an *Error with file:line:col).
//
// Comments on lines of their own are printed before the statement, entry or
// declaration that follows them (or before the closing brace, or at the end of
// the file); a comment after the last token of a statement stays at the end of
// its last line. A comment inside a statement but outside any block of it
// (say, between the arguments of a call split over lines) is moved to a line
// of its own before the statement.
func Format(filename string, src []byte) ([]byte, error) {
	f, err := parseFile(filename, src)
	if err != nil {
		return nil, err
	}
	p := newPrinter(filename, src)
	p.file(f)
	return p.out.Bytes(), nil
}

// printer holds the state of one Format call.
type printer struct {
	src    []byte
	toks   []lexer.Token // the tokens of src, without whitespace and comments
	cmts   []lexer.Token // the comment tokens of src, in order
	used   []bool        // whether cmts[i] has been printed
	out    bytes.Buffer
	indent int
	broken map[*IfExpr]bool // ifs that must be printed on several lines
	marks  []ifMark         // ifs printed on one line, in output order
}

// ifMark records where a one-line if starts in the output.
type ifMark struct {
	x   *IfExpr
	off int
}

// unit is a statement, entry or declaration: something printed on lines of
// its own, with the comments before it and a trailing comment.
type unit struct {
	start   lexer.Position // its first token
	end     int            // offset just past its last token
	endLine int            // line of its last token
	semi    bool           // it ends with an expression a [ could index
	print   func()
}

func newPrinter(filename string, src []byte) *printer {
	p := &printer{src: src, broken: map[*IfExpr]bool{}}
	p.cmts = comments(filename, src)
	p.used = make([]bool, len(p.cmts))
	if lx, err := xlLexer.Lex(filename, bytes.NewReader(src)); err == nil {
		syms := xlLexer.Symbols()
		skip := map[lexer.TokenType]bool{syms["Comment"]: true, syms["Whitespace"]: true}
		for {
			t, err := lx.Next()
			if err != nil || t.EOF() {
				break
			}
			if !skip[t.Type] {
				p.toks = append(p.toks, trimSpace(t))
			}
		}
	}
	return p
}

// trimSpace drops the whitespace a token may begin with (a - or ( that
// begins a line is lexed with the line break before it) and moves its
// position to the first character left.
func trimSpace(t lexer.Token) lexer.Token {
	for len(t.Value) > 1 && strings.IndexByte(" \t\r\n", t.Value[0]) >= 0 {
		if t.Value[0] == '\n' {
			t.Pos.Line++
			t.Pos.Column = 1
		} else {
			t.Pos.Column++
		}
		t.Pos.Offset++
		t.Value = t.Value[1:]
	}
	return t
}

// lastTok returns the index of the last token that starts before off, or -1.
func (p *printer) lastTok(off int) int {
	i, _ := slices.BinarySearchFunc(p.toks, off, func(t lexer.Token, off int) int { return t.Pos.Offset - off })
	return i - 1
}

// closeOff is the offset of the last token before endPos: the closing brace
// of a block whose EndPos it is.
func (p *printer) closeOff(endPos lexer.Position) int {
	if i := p.lastTok(endPos.Offset); i >= 0 {
		return p.toks[i].Pos.Offset
	}
	return endPos.Offset
}

// openBrace returns the first '{' token at or after off.
func (p *printer) openBrace(off int) lexer.Position {
	for i := max(p.lastTok(off), 0); i < len(p.toks); i++ {
		if t := p.toks[i]; t.Pos.Offset >= off && t.Value == "{" {
			return t.Pos
		}
	}
	return lexer.Position{Offset: off}
}

// newUnit makes a unit spanning from start to the last token before endPos.
func (p *printer) newUnit(start, endPos lexer.Position, semi bool, print func()) unit {
	u := unit{start: start, end: start.Offset, endLine: start.Line, semi: semi, print: print}
	if i := p.lastTok(endPos.Offset); i >= 0 && p.toks[i].Pos.Offset >= start.Offset {
		t := p.toks[i]
		u.end, u.endLine = t.Pos.Offset+len(t.Value), t.Pos.Line
	}
	return u
}

func (p *printer) write(s string) { p.out.WriteString(s) }

func (p *printer) writeIndent() {
	for range p.indent {
		p.out.WriteString("  ")
	}
}

// commentLine prints comment i on a line of its own.
func (p *printer) commentLine(i int) {
	p.used[i] = true
	p.writeIndent()
	p.write(p.cmts[i].Value)
	p.write("\n")
}

// hasComments reports whether a comment, printed or not, lies in [from, to).
func (p *printer) hasComments(from, to int) bool {
	for _, c := range p.cmts {
		if c.Pos.Offset >= from && c.Pos.Offset < to {
			return true
		}
	}
	return false
}

// depth0 reports whether off is outside every brace pair opened after from.
func (p *printer) depth0(from, off int) bool {
	depth := 0
	for i := max(p.lastTok(from), 0); i < len(p.toks) && p.toks[i].Pos.Offset < off; i++ {
		if p.toks[i].Pos.Offset < from {
			continue
		}
		switch p.toks[i].Value {
		case "{":
			depth++
		case "}":
			depth--
		}
	}
	return depth == 0
}

// body prints units one per line at the current indentation, each after the
// comments before it, then the comments left before closeOff. openLine is the
// line of the opening brace. At the top level (top) declarations are always
// separated by a blank line; elsewhere one blank line of the source between
// two items is kept.
func (p *printer) body(units []unit, openLine, closeOff int, top bool) {
	prev, first, prevUnit := openLine, true, false
	blank := func(line int) {
		if !first && (line > prev+1 || (top && prevUnit)) {
			p.write("\n")
		}
	}
	flush := func(before int) {
		for i, c := range p.cmts {
			if c.Pos.Offset >= before {
				break
			}
			if !p.used[i] {
				blank(c.Pos.Line)
				p.commentLine(i)
				prev, first, prevUnit = c.Pos.Line, false, false
			}
		}
	}
	for k, u := range units {
		limit := closeOff
		if k+1 < len(units) {
			limit = units[k+1].start.Offset
		}
		flush(u.start.Offset)
		blank(u.start.Line)
		// Comments inside the unit but outside its blocks go before it.
		for i, c := range p.cmts {
			if !p.used[i] && c.Pos.Offset >= u.start.Offset && c.Pos.Offset < u.end && p.depth0(u.start.Offset, c.Pos.Offset) {
				p.commentLine(i)
			}
		}
		p.writeIndent()
		p.render(u)
		// A [ that begins a line would index the line before it: keep the
		// statements apart. (A - or ( that begins a line begins a new one.)
		if u.semi && k+1 < len(units) {
			if off := units[k+1].start.Offset; off < len(p.src) && p.src[off] == '[' {
				p.write(";")
			}
		}
		for i, c := range p.cmts {
			if !p.used[i] && c.Pos.Offset >= u.end && c.Pos.Offset < limit && c.Pos.Line == u.endLine {
				p.used[i] = true
				p.write("  ")
				p.write(c.Value)
				break
			}
		}
		p.write("\n")
		prev, first, prevUnit = u.endLine, false, true
	}
	flush(closeOff)
}

// render prints u, then prints it again with an if on several lines for as
// long as a line it printed is too wide and holds a one-line if.
func (p *printer) render(u unit) {
	mark, nmarks := p.out.Len(), len(p.marks)
	used := slices.Clone(p.used)
	for {
		u.print()
		x := p.overlong(mark, nmarks)
		if x == nil {
			return
		}
		p.broken[x] = true
		p.out.Truncate(mark)
		p.marks = p.marks[:nmarks]
		copy(p.used, used)
	}
}

// overlong returns the first one-line if on the first line, from the one
// holding mark on, that is wider than maxWidth.
func (p *printer) overlong(mark, nmarks int) *IfExpr {
	b := p.out.Bytes()
	start := bytes.LastIndexByte(b[:mark], '\n') + 1
	for start < len(b) {
		end := bytes.IndexByte(b[start:], '\n')
		if end < 0 {
			end = len(b)
		} else {
			end += start
		}
		if utf8.RuneCount(b[start:end]) > maxWidth {
			for _, m := range p.marks[nmarks:] {
				if m.off >= start && m.off < end {
					return m.x
				}
			}
		}
		start = end + 1
	}
	return nil
}

// block prints `{`, the units on lines of their own one level deeper, and
// `}`; or `{}` when there is nothing inside.
func (p *printer) block(units []unit, open lexer.Position, closeOff int) {
	if len(units) == 0 && !p.hasComments(open.Offset, closeOff) {
		p.write("{}")
		return
	}
	p.write("{\n")
	p.indent++
	p.body(units, open.Line, closeOff, false)
	p.indent--
	p.writeIndent()
	p.write("}")
}

func (p *printer) file(f *File) {
	var units []unit
	for _, d := range f.Decls {
		if u, ok := p.decl(d); ok {
			units = append(units, u)
		}
	}
	p.body(units, 0, len(p.src)+1, true)
}

func (p *printer) decl(d *Decl) (unit, bool) {
	switch {
	case d.Model != nil:
		m := d.Model
		return p.newUnit(d.Pos, m.EndPos, false, func() {
			p.write("model " + m.Name + " ")
			p.block(p.stmtUnits(m.Items), p.openBrace(m.Pos.Offset), p.closeOff(m.EndPos))
		}), true
	case d.Def != nil && d.Def.Body != nil:
		return p.newUnit(d.Pos, d.Def.Body.EndPos, false, func() { p.def(d.Def) }), true
	case d.Train != nil:
		return p.newUnit(d.Pos, d.Train.EndPos, false, func() { p.section(d.Train) }), true
	}
	return unit{}, false
}

func (p *printer) section(s *Section) {
	var units []unit
	for _, e := range s.Entries {
		units = append(units, p.newUnit(e.Pos, e.EndPos, false, func() {
			p.write(e.Name + " = ")
			p.expr(e.Value)
		}))
	}
	p.write(s.Kind + " ")
	p.block(units, p.openBrace(s.Pos.Offset), p.closeOff(s.EndPos))
}

func (p *printer) def(d *Def) {
	p.write("def " + d.Name + "(")
	for i, a := range d.Args {
		if i > 0 {
			p.write(", ")
		}
		p.write(a.Name)
		if a.Default != nil {
			p.write(" = ")
			p.expr(a.Default)
		}
	}
	p.write(") ")
	p.blockOf(d.Body)
}

// blockOf prints a Block.
func (p *printer) blockOf(b *Block) {
	if b == nil {
		p.write("{}")
		return
	}
	p.block(p.stmtUnits(b.Stmts), b.Pos, p.closeOff(b.EndPos))
}

func (p *printer) stmtUnits(stmts []*Stmt) []unit {
	units := make([]unit, 0, len(stmts))
	for _, s := range stmts {
		semi := s.Config == nil && s.Def == nil && s.Repeat == nil
		units = append(units, p.newUnit(s.Pos, s.EndPos, semi, func() { p.stmt(s) }))
	}
	return units
}

func (p *printer) stmt(s *Stmt) {
	switch {
	case s.Config != nil:
		p.section(s.Config)
	case s.Input != nil:
		in := s.Input
		p.write("input " + in.Name + ": ")
		p.typeExpr(in.Type)
		if in.Lo != nil {
			p.write(" in ")
			p.expr(in.Lo)
			if in.Hi != nil {
				p.write("..")
				p.expr(in.Hi)
			}
		}
	case s.Param != nil:
		p.write("param " + s.Param.Name + ": ")
		p.typeExpr(s.Param.Type)
		p.write(" = ")
		p.expr(s.Param.Init)
	case s.Def != nil:
		p.def(s.Def)
	case s.Let != nil:
		p.write("let " + s.Let.Name + " = ")
		p.expr(s.Let.Value)
	case s.Output != nil:
		p.write("output " + s.Output.Name + " = ")
		p.expr(s.Output.Value)
	case s.Repeat != nil:
		r := s.Repeat
		p.write("repeat " + r.Var + " in ")
		p.expr(r.Lo)
		p.write("..")
		p.expr(r.Hi)
		p.write(" ")
		p.blockOf(r.Body)
	case s.Assign != nil:
		p.write(s.Assign.Name + " = ")
		p.expr(s.Assign.Value)
	case s.Expr != nil:
		p.expr(s.Expr)
	}
}

func (p *printer) typeExpr(t *TypeExpr) {
	if t == nil {
		return
	}
	p.write(t.DType + "[")
	p.exprList(t.Dims)
	p.write("]")
}
