package parser

import (
	"bytes"
	"fmt"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

var xlLexer = lexer.MustSimple([]lexer.SimpleRule{
	// A - or ( that begins a line begins a new expression: it is never a
	// binary minus or a call continuing the previous line.
	{Name: "LineMinus", Pattern: `[ \t\r]*\n[ \t\r\n]*-`},
	{Name: "LineParen", Pattern: `[ \t\r]*\n[ \t\r\n]*\(`},
	{Name: "Comment", Pattern: `#[^\n]*`},
	{Name: "String", Pattern: `"(\\.|[^"\\\n])*"`},
	{Name: "Float", Pattern: `\d+\.\d+([eE][-+]?\d+)?|\d+[eE][-+]?\d+`},
	{Name: "Int", Pattern: `\d+`},
	{Name: "Ident", Pattern: `[A-Za-z_][A-Za-z0-9_]*`},
	{Name: "Punct", Pattern: `\*\*|==|!=|<=|>=|&&|\|\||\.\.|[-+*/%@<>=!(){}\[\],:;]`},
	{Name: "Whitespace", Pattern: `[ \t\r\n]+`},
})

var xlParser = participle.MustBuild[File](
	participle.Lexer(xlLexer),
	participle.Elide("Whitespace", "Comment"),
	participle.Map(lineStart, "LineMinus", "LineParen"),
	participle.UseLookahead(4),
)

// lineStart trims a LineMinus or LineParen token to its last character and
// moves its position there.
func lineStart(t lexer.Token) (lexer.Token, error) {
	for _, c := range t.Value[:len(t.Value)-1] {
		if c == '\n' {
			t.Pos.Line++
			t.Pos.Column = 1
		} else {
			t.Pos.Column++
		}
		t.Pos.Offset++
	}
	t.Value = t.Value[len(t.Value)-1:]
	return t, nil
}

// parseFile parses src into its syntax tree.
func parseFile(filename string, src []byte) (*File, error) {
	if err := checkNesting(filename, src); err != nil {
		return nil, err
	}
	f, err := xlParser.ParseBytes(filename, src)
	if err != nil {
		if pe, ok := err.(participle.Error); ok {
			return nil, &Error{Pos: pe.Position(), Msg: pe.Message(), src: src}
		}
		return nil, &Error{Pos: lexer.Position{Filename: filename, Line: 1, Column: 1}, Msg: err.Error(), src: src}
	}
	return f, nil
}

// comments returns the comment tokens of src in order.
func comments(filename string, src []byte) []lexer.Token {
	lx, err := xlLexer.Lex(filename, bytes.NewReader(src))
	if err != nil {
		return nil
	}
	commentType := xlLexer.Symbols()["Comment"]
	var out []lexer.Token
	for {
		t, err := lx.Next()
		if err != nil || t.EOF() {
			return out
		}
		if t.Type == commentType {
			out = append(out, t)
		}
	}
}

// maxNesting bounds how deeply a file may nest. The parser, the formatter
// and the elaborator all recurse once per level, so without a bound a long
// enough input overflows the Go stack, which no recover can catch.
const maxNesting = 256

// chainEnd holds the tokens that end an operand chain: every binary operator
// looser than ** and prefix minus (a binary - is decided by the token before
// it), and the separators.
var chainEnd = map[string]bool{
	"+": true, "*": true, "/": true, "%": true, "@": true,
	"==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true, "&&": true, "||": true,
	",": true, ";": true, ":": true, "..": true, "=": true,
}

// checkNesting scans src's tokens before the parser sees them and refuses,
// at the token that goes too deep, a file whose nesting exceeds maxNesting.
// The nesting at a token is the number of open brackets ( [ { plus, at every
// open bracket level and the top, the prefix operators (- !), ** and else
// ifs of the operand chain in progress there. A chain ends at a binary
// operator other than ** (a - after an operand is binary), at a separator
// (, ; : .. =) and where a line begins with - or ( (a new expression); an
// if's condition is its own level. Lexing errors are left to the parser.
func checkNesting(filename string, src []byte) error {
	lx, err := xlLexer.Lex(filename, bytes.NewReader(src))
	if err != nil {
		return nil
	}
	syms := xlLexer.Symbols()
	skip := map[lexer.TokenType]bool{syms["Comment"]: true, syms["Whitespace"]: true}
	lineStarts := map[lexer.TokenType]bool{syms["LineMinus"]: true, syms["LineParen"]: true}
	operand := map[lexer.TokenType]bool{syms["Int"]: true, syms["Float"]: true, syms["String"]: true, syms["Ident"]: true}
	type level struct {
		open  string // "(", "[", "{", or "if" for an if's condition; "" at the top
		chain int    // prefix operators, ** and else ifs of the chain in progress
	}
	stack := []level{{}}
	depth := 0 // open levels after the top one plus every level's chain
	var prev lexer.Token
	for {
		t, err := lx.Next()
		if err != nil || t.EOF() {
			return nil
		}
		if skip[t.Type] {
			continue
		}
		if lineStarts[t.Type] {
			t, _ = lineStart(t)
		}
		top := &stack[len(stack)-1]
		endChain := func() {
			depth -= top.chain
			top.chain = 0
		}
		deeper := 0 // how much this token adds
		switch v := t.Value; {
		case lineStarts[t.Type]:
			endChain()
			if v == "-" {
				top.chain++
			} else {
				stack = append(stack, level{open: "("})
			}
			deeper = 1
		case v == "(" || v == "[" || v == "{":
			if v == "{" && top.open == "if" && prev.Value != "else" {
				// The then-block replaces the condition's level.
				depth -= 1 + top.chain
				stack = stack[:len(stack)-1]
			}
			stack = append(stack, level{open: v})
			deeper = 1
		case v == ")" || v == "]" || v == "}":
			// Close up to and including the innermost bracket; an if left
			// open is a syntax error the parser reports.
			for len(stack) > 1 {
				l := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				depth -= 1 + l.chain
				if l.open != "if" {
					break
				}
			}
		case v == "if" && t.Type == syms["Ident"]:
			if prev.Value == "else" && prev.Type == syms["Ident"] {
				top.chain++
				depth++
			}
			stack = append(stack, level{open: "if"})
			deeper = 1
		case v == "**" || v == "!" || v == "-" && !(operand[prev.Type] || prev.Value == ")" || prev.Value == "]" || prev.Value == "}"):
			top.chain++
			deeper = 1
		case t.Type == syms["Punct"] && (chainEnd[v] || v == "-"):
			endChain()
		}
		depth += deeper
		if depth > maxNesting {
			return &Error{Pos: t.Pos, Msg: fmt.Sprintf("nesting deeper than %d (each bracket, prefix - or !, ** and else if in an unfinished expression counts one)", maxNesting), src: src}
		}
		prev = t
	}
}
