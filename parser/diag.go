package parser

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Error is a diagnostic at a position of a model file. Error() gives
// `file:line:col: message`, then the source line and a caret under the column.
type Error struct {
	Pos lexer.Position
	Msg string
	src []byte
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: %s", e.Pos.Filename, e.Pos.Line, e.Pos.Column, e.Msg)
	if line, ok := sourceLine(e.src, e.Pos.Line); ok {
		col := e.Pos.Column - 1
		if col < 0 {
			col = 0
		}
		pad := []rune(line)
		if col > len(pad) {
			col = len(pad)
		}
		// Keep tabs so the caret lines up under a tab-indented line.
		var caret strings.Builder
		for _, r := range pad[:col] {
			if r == '\t' {
				caret.WriteRune('\t')
			} else {
				caret.WriteRune(' ')
			}
		}
		fmt.Fprintf(&b, "\n    %s\n    %s^", line, caret.String())
	}
	return b.String()
}

// Short is the diagnostic's first line, without the source excerpt.
func (e *Error) Short() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Pos.Filename, e.Pos.Line, e.Pos.Column, e.Msg)
}

func sourceLine(src []byte, n int) (string, bool) {
	if n < 1 || src == nil {
		return "", false
	}
	lines := bytes.Split(src, []byte("\n"))
	if n > len(lines) {
		return "", false
	}
	return strings.TrimRight(string(lines[n-1]), "\r"), true
}
