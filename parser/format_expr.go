package parser

import "bytes"

// Expressions are printed on one line, except an if whose branches are not
// single expressions (or hold comments, or do not fit) which is printed as a
// multi-line block at the current indentation.

func (p *printer) expr(e *Expr) {
	if e == nil {
		return
	}
	p.andExpr(e.Head)
	for _, t := range e.Tail {
		p.write(" || ")
		p.andExpr(t)
	}
}

func (p *printer) exprList(es []*Expr) {
	for i, e := range es {
		if i > 0 {
			p.write(", ")
		}
		p.expr(e)
	}
}

func (p *printer) andExpr(e *AndExpr) {
	if e == nil {
		return
	}
	p.cmpExpr(e.Head)
	for _, t := range e.Tail {
		p.write(" && ")
		p.cmpExpr(t)
	}
}

func (p *printer) cmpExpr(e *CmpExpr) {
	if e == nil {
		return
	}
	p.addExpr(e.Left)
	if e.Op != "" {
		p.write(" " + e.Op + " ")
		p.addExpr(e.Right)
	}
}

func (p *printer) addExpr(e *AddExpr) {
	if e == nil {
		return
	}
	p.mulExpr(e.Head)
	for _, t := range e.Tail {
		p.write(" " + t.Op + " ")
		p.mulExpr(t.X)
	}
}

func (p *printer) mulExpr(e *MulExpr) {
	if e == nil {
		return
	}
	p.unary(e.Head)
	for _, t := range e.Tail {
		p.write(" " + t.Op + " ")
		p.unary(t.X)
	}
}

func (p *printer) unary(e *Unary) {
	if e == nil {
		return
	}
	if e.Op != "" {
		p.write(e.Op)
		p.unary(e.X)
		return
	}
	if e.Pow != nil {
		p.postfix(e.Pow.Base)
		if e.Pow.Exp != nil {
			p.write(" ** ")
			p.unary(e.Pow.Exp.X)
		}
	}
}

func (p *printer) postfix(e *Postfix) {
	if e == nil {
		return
	}
	p.primary(e.X)
	for _, op := range e.Ops {
		if op.Call != nil {
			p.write("(")
			for i, a := range op.Call.Args {
				if i > 0 {
					p.write(", ")
				}
				if a.Name != "" {
					p.write(a.Name + " = ")
				}
				p.expr(a.Value)
			}
			p.write(")")
			continue
		}
		p.write("[")
		for i, ix := range op.Index {
			if i > 0 {
				p.write(", ")
			}
			p.expr(ix.Start)
			if ix.Colon {
				p.write(":")
			}
			p.expr(ix.End)
		}
		p.write("]")
	}
}

func (p *printer) primary(e *Primary) {
	switch {
	case e == nil:
	case e.Float != nil:
		p.write(*e.Float)
	case e.Int != nil:
		p.write(*e.Int)
	case e.Str != nil:
		p.write(*e.Str)
	case e.Bool != nil:
		p.write(*e.Bool)
	case e.If != nil:
		p.ifExpr(e.If)
	case e.Name != nil:
		p.write(*e.Name)
	case e.Paren != nil:
		p.write("(")
		p.expr(e.Paren)
		p.write(")")
	case e.List != nil:
		p.write("[")
		p.exprList(e.List.Items)
		p.write("]")
	}
}

// ifExpr prints an if chain on one line when every branch is a single
// expression, no branch holds a comment and the line stays narrow enough
// (render breaks it otherwise); else as a multi-line block.
func (p *printer) ifExpr(x *IfExpr) {
	if !p.broken[x] && p.oneLineOK(x) {
		mark, nmarks := p.out.Len(), len(p.marks)
		p.marks = append(p.marks, ifMark{x, mark})
		p.ifOneLine(x)
		if bytes.IndexByte(p.out.Bytes()[mark:], '\n') < 0 {
			return
		}
		p.out.Truncate(mark)
		p.marks = p.marks[:nmarks]
	}
	p.ifMulti(x)
}

// oneLineOK reports whether every branch of the chain is one expression
// statement with no comment inside its braces.
func (p *printer) oneLineOK(x *IfExpr) bool {
	ok := func(b *Block) bool {
		return b != nil && len(b.Stmts) == 1 && b.Stmts[0].Expr != nil &&
			!p.hasComments(b.Pos.Offset, p.closeOff(b.EndPos))
	}
	for ; x != nil; x = x.ElseIf {
		if !ok(x.Then) || (x.Else != nil && !ok(x.Else)) {
			return false
		}
	}
	return true
}

func (p *printer) ifOneLine(x *IfExpr) {
	for ; x != nil; x = x.ElseIf {
		p.write("if ")
		p.expr(x.Cond)
		p.write(" { ")
		p.expr(x.Then.Stmts[0].Expr)
		p.write(" }")
		if x.ElseIf != nil {
			p.write(" else ")
		} else if x.Else != nil {
			p.write(" else { ")
			p.expr(x.Else.Stmts[0].Expr)
			p.write(" }")
		}
	}
}

func (p *printer) ifMulti(x *IfExpr) {
	for ; x != nil; x = x.ElseIf {
		p.write("if ")
		p.expr(x.Cond)
		p.write(" ")
		p.blockOf(x.Then)
		if x.ElseIf != nil {
			p.write(" else ")
		} else if x.Else != nil {
			p.write(" else ")
			p.blockOf(x.Else)
		}
	}
}
