package parser

import (
	"bytes"

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
