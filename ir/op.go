package ir

// Op is an operation code.
type Op uint8

// Class groups ops that share a type rule.
type Class uint8

// The op classes.
const (
	ClassUnary   Class = iota // f(x), same type as x
	ClassBinary               // f(x, y), x and y of one type
	ClassCompare              // f(x, y) -> bool of the same shape
	ClassOther                // an op with a rule of its own
)

// The ops. Elementwise ops require operands of identical types: broadcasting
// is explicit (broadcast op), as in HLO.
const (
	OpInvalid Op = iota

	// Unary elementwise.
	OpNeg
	OpAbs
	OpExp
	OpLog
	OpSqrt
	OpRsqrt
	OpTanh
	OpErf
	OpSin
	OpCos
	OpRecip
	OpSign
	OpNot          // bool only
	OpStopGradient // identity whose gradient is zero

	// Binary elementwise.
	OpAdd
	OpSub
	OpMul
	OpDiv
	OpMax
	OpMin
	OpPow
	OpAnd // bool only
	OpOr  // bool only

	// Compares, producing bool.
	OpEq
	OpNe
	OpLt
	OpLe
	OpGt
	OpGe

	// Others.
	OpSelect     // select %pred, %a, %b
	OpConvert    // convert %x : <new dtype, same shape>
	OpBroadcast  // broadcast %x {dims=[...]}: operand dim i becomes result dim dims[i]
	OpReshape    // reshape %x : <same element count>
	OpTranspose  // transpose %x {perm=[...]}: result dim i is operand dim perm[i]
	OpSlice      // slice %x {start=[...], limit=[...], stride=[...]}
	OpPad        // pad %x {low=[...], high=[...], interior=[...]}: zero padding; operand element j of axis i lands at low[i] + j*(interior[i]+1)
	OpConcat     // concat %a, %b, ... {axis=k}
	OpIota       // iota {axis=k}: element = its index along axis k
	OpConstant   // constant {value=v}: every element is v
	OpReduceSum  // reduce_sum %x {axes=[...]}: the axes are removed
	OpReduceMax  // reduce_max %x {axes=[...]}
	OpDot        // dot %a, %b {batch=[[...],[...]], contract=[[...],[...]], out=f32 (optional: the result's dtype)}
	OpGather     // gather %table, %idx {axis=k}: result = table[:k] ++ idx ++ table[k+1:]
	OpScatterAdd // scatter_add %upd, %idx {axis=k}: the adjoint of gather; result type is the table's
	OpRng        // rng %key {dist=uniform|normal, stream=n}: counter-based random numbers
	OpFusion     // fusion %a, ... {calls=name, kind=loop|reduce|dot}: calls the fused sub-function Value.Callee
	OpOutput     // output %f {index=k}: result k (k >= 1) of the multi-output fusion %f, which writes it

	numOps
)

type opInfo struct {
	name  string
	class Class
	arity int // -1: variadic
}

var opTable = [numOps]opInfo{
	OpInvalid:      {"invalid", ClassOther, 0},
	OpNeg:          {"neg", ClassUnary, 1},
	OpAbs:          {"abs", ClassUnary, 1},
	OpExp:          {"exp", ClassUnary, 1},
	OpLog:          {"log", ClassUnary, 1},
	OpSqrt:         {"sqrt", ClassUnary, 1},
	OpRsqrt:        {"rsqrt", ClassUnary, 1},
	OpTanh:         {"tanh", ClassUnary, 1},
	OpErf:          {"erf", ClassUnary, 1},
	OpSin:          {"sin", ClassUnary, 1},
	OpCos:          {"cos", ClassUnary, 1},
	OpRecip:        {"recip", ClassUnary, 1},
	OpSign:         {"sign", ClassUnary, 1},
	OpNot:          {"not", ClassUnary, 1},
	OpStopGradient: {"stop_gradient", ClassUnary, 1},
	OpAdd:          {"add", ClassBinary, 2},
	OpSub:          {"sub", ClassBinary, 2},
	OpMul:          {"mul", ClassBinary, 2},
	OpDiv:          {"div", ClassBinary, 2},
	OpMax:          {"max", ClassBinary, 2},
	OpMin:          {"min", ClassBinary, 2},
	OpPow:          {"pow", ClassBinary, 2},
	OpAnd:          {"and", ClassBinary, 2},
	OpOr:           {"or", ClassBinary, 2},
	OpEq:           {"eq", ClassCompare, 2},
	OpNe:           {"ne", ClassCompare, 2},
	OpLt:           {"lt", ClassCompare, 2},
	OpLe:           {"le", ClassCompare, 2},
	OpGt:           {"gt", ClassCompare, 2},
	OpGe:           {"ge", ClassCompare, 2},
	OpSelect:       {"select", ClassOther, 3},
	OpConvert:      {"convert", ClassOther, 1},
	OpBroadcast:    {"broadcast", ClassOther, 1},
	OpReshape:      {"reshape", ClassOther, 1},
	OpTranspose:    {"transpose", ClassOther, 1},
	OpSlice:        {"slice", ClassOther, 1},
	OpPad:          {"pad", ClassOther, 1},
	OpConcat:       {"concat", ClassOther, -1},
	OpIota:         {"iota", ClassOther, 0},
	OpConstant:     {"constant", ClassOther, 0},
	OpReduceSum:    {"reduce_sum", ClassOther, 1},
	OpReduceMax:    {"reduce_max", ClassOther, 1},
	OpDot:          {"dot", ClassOther, 2},
	OpGather:       {"gather", ClassOther, 2},
	OpScatterAdd:   {"scatter_add", ClassOther, 2},
	OpRng:          {"rng", ClassOther, 1},
	OpFusion:       {"fusion", ClassOther, -1},
	OpOutput:       {"output", ClassOther, 1},
}

var opByName = func() map[string]Op {
	m := make(map[string]Op, numOps)
	for op := Op(1); op < numOps; op++ {
		m[opTable[op].name] = op
	}
	return m
}()

func (op Op) String() string {
	if op < numOps {
		return opTable[op].name
	}
	return "op?"
}

// LookupOp returns the op named s.
func LookupOp(s string) (Op, bool) {
	op, ok := opByName[s]
	return op, ok
}

// Class is the op's type-rule class.
func (op Op) Class() Class { return opTable[op].class }

// Arity is the number of operands, or -1 for a variadic op.
func (op Op) Arity() int { return opTable[op].arity }

// IsElementwise reports whether the op maps elements at equal indices.
func (op Op) IsElementwise() bool {
	c := op.Class()
	return c == ClassUnary || c == ClassBinary || c == ClassCompare || op == OpSelect || op == OpConvert
}

// Ops lists every op, in declaration order.
func Ops() []Op {
	ops := make([]Op, 0, numOps-1)
	for op := Op(1); op < numOps; op++ {
		ops = append(ops, op)
	}
	return ops
}
