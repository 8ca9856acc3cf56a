// Package parser reads .xl model files: the grammar (participle), the
// elaboration of configs, functions, params and repeat loops into ir, the
// standard library written in the language itself, diagnostics with
// file:line:col and a caret, and the canonical formatter behind `xlc fmt`.
//
// Limits, each reported as a diagnostic at the source:
//   - nesting: at most 256 levels, where every open bracket ( [ { (the
//     model's braces included) and every prefix - or !, ** and else if of an
//     unfinished expression counts one (see checkNesting); so neither the
//     parser, the formatter nor the elaborator can overflow the stack;
//   - repeat: at most 100,000 iterations per compile, all loops together;
//     a range lo..hi wants lo <= hi;
//   - function calls nest at most 256 deep;
//   - a tensor has at most 2^31-1 elements (ir.CheckType); integer constant
//     arithmetic must not overflow int64;
//   - rng_key is reserved for the random key parameter, and inputs and
//     parameters share one namespace of IR parameter names.
package parser

import "github.com/alecthomas/participle/v2/lexer"

// File is a whole .xl file: models, top-level functions, a train section.
type File struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Decls  []*Decl `parser:"@@*"`
}

// Decl is one top-level declaration.
type Decl struct {
	Pos   lexer.Position
	Model *Model   `parser:"  @@"`
	Def   *Def     `parser:"| @@"`
	Train *Section `parser:"| @@"`
}

// Model is `parser:"model name { items }"`.
type Model struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Name   string  `parser:"'model' @Ident '{'"`
	Items  []*Stmt `parser:"@@* '}'"`
}

// Section is a `parser:"config { ... }"` or `parser:"train { ... }"` block of name = value entries.
type Section struct {
	Pos     lexer.Position
	EndPos  lexer.Position
	Kind    string   `parser:"@('config' | 'train') '{'"`
	Entries []*Entry `parser:"@@* '}'"`
}

// Entry is `parser:"name = expr"` in a section.
type Entry struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Name   string `parser:"@Ident '='"`
	Value  *Expr  `parser:"@@ ';'?"`
}

// Stmt is one statement of a model body or block.
type Stmt struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Config *Section `parser:"(  @@"`
	Input  *Input   `parser:" | @@"`
	Param  *Param   `parser:" | @@"`
	Def    *Def     `parser:" | @@"`
	Let    *Let     `parser:" | @@"`
	Output *Output  `parser:" | @@"`
	Repeat *Repeat  `parser:" | @@"`
	Assign *Assign  `parser:" | @@"`
	Expr   *Expr    `parser:" | @@ ) ';'?"`
}

// Input is `parser:"input name: type [in lo..hi]"`.
type Input struct {
	Pos  lexer.Position
	Name string    `parser:"'input' @Ident ':'"`
	Type *TypeExpr `parser:"@@"`
	Lo   *Expr     `parser:"( 'in' @@"`
	Hi   *Expr     `parser:"  '..' @@ )?"`
}

// Param is `parser:"param name: type = initializer"`.
type Param struct {
	Pos  lexer.Position
	Name string    `parser:"'param' @Ident ':'"`
	Type *TypeExpr `parser:"@@ '='"`
	Init *Expr     `parser:"@@"`
}

// TypeExpr is `parser:"f32[dims]"`, dims being expressions of config values.
type TypeExpr struct {
	Pos   lexer.Position
	DType string  `parser:"@Ident '['"`
	Dims  []*Expr `parser:"( @@ ( ',' @@ )* )? ']'"`
}

// Def is `parser:"def name(args) { body }"`.
type Def struct {
	Pos  lexer.Position
	Name string    `parser:"'def' @Ident '('"`
	Args []*DefArg `parser:"( @@ ( ',' @@ )* )? ')'"`
	Body *Block    `parser:"@@"`
}

// DefArg is a parameter of a def, with an optional default.
type DefArg struct {
	Pos     lexer.Position
	Name    string `parser:"@Ident"`
	Default *Expr  `parser:"( '=' @@ )?"`
}

// Block is `parser:"{ stmts }"`; its value is that of its last statement when that is
// an expression.
type Block struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Stmts  []*Stmt `parser:"'{' @@* '}'"`
}

// Let is `parser:"let name = expr"`.
type Let struct {
	Pos   lexer.Position
	Name  string `parser:"'let' @Ident '='"`
	Value *Expr  `parser:"@@"`
}

// Output is `parser:"output name = expr"`.
type Output struct {
	Pos   lexer.Position
	Name  string `parser:"'output' @Ident '='"`
	Value *Expr  `parser:"@@"`
}

// Repeat is `parser:"repeat i in lo..hi { body }"`.
type Repeat struct {
	Pos  lexer.Position
	Var  string `parser:"'repeat' @Ident 'in'"`
	Lo   *Expr  `parser:"@@ '..'"`
	Hi   *Expr  `parser:"@@"`
	Body *Block `parser:"@@"`
}

// Assign is `parser:"name = expr"`, rebinding an existing name.
type Assign struct {
	Pos   lexer.Position
	Name  string `parser:"@Ident '='"`
	Value *Expr  `parser:"@@"`
}

// Expr is an expression; the levels below give the precedence, loosest first.
type Expr struct {
	Pos  lexer.Position
	Head *AndExpr   `parser:"@@"`
	Tail []*AndExpr `parser:"( '||' @@ )*"`
}

// AndExpr is a chain of &&.
type AndExpr struct {
	Pos  lexer.Position
	Head *CmpExpr   `parser:"@@"`
	Tail []*CmpExpr `parser:"( '&&' @@ )*"`
}

// CmpExpr is an optional comparison.
type CmpExpr struct {
	Pos   lexer.Position
	Left  *AddExpr `parser:"@@"`
	Op    string   `parser:"( @('==' | '!=' | '<=' | '>=' | '<' | '>')"`
	Right *AddExpr `parser:"  @@ )?"`
}

// AddExpr is a chain of + and -.
type AddExpr struct {
	Pos  lexer.Position
	Head *MulExpr  `parser:"@@"`
	Tail []*OpTerm `parser:"@@*"`
}

// OpTerm is one `parser:"op operand"` link of a chain.
type OpTerm struct {
	Pos lexer.Position
	Op  string   `parser:"@('+':Punct | '-':Punct)"`
	X   *MulExpr `parser:"@@"`
}

// MulExpr is a chain of *, /, % and @.
type MulExpr struct {
	Pos  lexer.Position
	Head *Unary     `parser:"@@"`
	Tail []*MulTerm `parser:"@@*"`
}

// MulTerm is one `parser:"op operand"` link of a multiplicative chain.
type MulTerm struct {
	Pos lexer.Position
	Op  string `parser:"@('*' | '/' | '%' | '@')"`
	X   *Unary `parser:"@@"`
}

// Unary is a prefix - or !, or a power.
type Unary struct {
	Pos lexer.Position
	Op  string   `parser:"(  @('-' | '!' | LineMinus)"`
	X   *Unary   `parser:"   @@"`
	Pow *PowExpr `parser:" | @@ )"`
}

// PowExpr is `parser:"base ** exponent"` (right-associative, tighter than unary minus).
type PowExpr struct {
	Pos  lexer.Position
	Base *Postfix `parser:"@@"`
	Exp  *PowTail `parser:"@@?"`
}

// PowTail is `parser:"** exponent"`; its Pos is that of the operator.
type PowTail struct {
	Pos lexer.Position
	X   *Unary `parser:"'**' @@"`
}

// Postfix is a primary followed by calls and indexing.
type Postfix struct {
	Pos lexer.Position
	X   *Primary  `parser:"@@"`
	Ops []*PostOp `parser:"@@*"`
}

// PostOp is a call `parser:"(args)"` or an index `parser:"[items]"`.
type PostOp struct {
	Pos   lexer.Position
	Call  *CallArgs `parser:"  '(':Punct @@ ')'"`
	Index []*Index  `parser:"| '[' @@ ( ',' @@ )* ']'"`
}

// CallArgs are the arguments of a call.
type CallArgs struct {
	Pos  lexer.Position
	Args []*Arg `parser:"( @@ ( ',' @@ )* )?"`
}

// Arg is a positional or keyword argument.
type Arg struct {
	Pos   lexer.Position
	Name  string `parser:"( @Ident '=' )?"`
	Value *Expr  `parser:"@@"`
}

// Index is `parser:"e"`, `parser:":"`, `parser:"a:"`, `parser:":b"` or `parser:"a:b"`.
type Index struct {
	Pos   lexer.Position
	Start *Expr `parser:"@@?"`
	Colon bool  `parser:"( @':'"`
	End   *Expr `parser:"  @@? )?"`
}

// Primary is a literal, a name, a parenthesised expression, a list or an if.
type Primary struct {
	Pos   lexer.Position
	Float *string `parser:"  @Float"`
	Int   *string `parser:"| @Int"`
	Str   *string `parser:"| @String"`
	Bool  *string `parser:"| @('true' | 'false')"`
	If    *IfExpr `parser:"| @@"`
	Name  *string `parser:"| @Ident"`
	Paren *Expr   `parser:"| ( '(' | LineParen ) @@ ')'"`
	List  *List   `parser:"| '[' @@ ']'"`
}

// List is a list literal.
type List struct {
	Pos   lexer.Position
	Items []*Expr `parser:"( @@ ( ',' @@ )* )?"`
}

// IfExpr is `parser:"if cond { } else if ... else { }"`; the condition must be a
// compile-time constant.
type IfExpr struct {
	Pos    lexer.Position
	Cond   *Expr   `parser:"'if' @@"`
	Then   *Block  `parser:"@@"`
	ElseIf *IfExpr `parser:"( 'else' ( @@"`
	Else   *Block  `parser:"        | @@ ) )?"`
}
