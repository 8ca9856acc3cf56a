package trainstep

import (
	"fmt"

	"xlc/ir"
)

// StateSet declares the persistent state of a train step (optimizer moments,
// step counters, the loss scale) as function parameters with role=state,
// and records each one's new value as a function result of the same name.
// The trainer feeds every result named like a parameter back as that
// parameter's value at the next step (the buffer is donated).
type StateSet struct {
	B     *ir.Builder
	cur   map[string]*ir.Value
	next  map[string]*ir.Value
	order []string
}

// NewStateSet returns an empty state set that adds parameters through b.
func NewStateSet(b *ir.Builder) *StateSet {
	return &StateSet{B: b, cur: map[string]*ir.Value{}, next: map[string]*ir.Value{}}
}

// Get returns the current value of the state named name, declaring it on
// first use as a parameter of type t initialised by init (an initializer
// name: zeros, ones, constant with scale as its value).
func (s *StateSet) Get(name string, t ir.Type, init string, scale float64) *ir.Value {
	if v := s.cur[name]; v != nil {
		return v
	}
	a := ir.Attrs{}.Set("role", "state").Set("init", init)
	if init == "constant" {
		a = a.Set("scale", scale)
	}
	v := s.B.Param(name, t, a)
	s.cur[name] = v
	s.order = append(s.order, name)
	return v
}

// Set records v as the state's value after this step.
func (s *StateSet) Set(name string, v *ir.Value) {
	cur := s.cur[name]
	if cur == nil {
		s.B.Fail("state %s set before it was declared", name)
		return
	}
	if !cur.Type.Equal(v.Type) {
		s.B.Fail("state %s: want %v, have %v", name, cur.Type, v.Type)
		return
	}
	s.next[name] = v
}

// Gate keeps every state's old value where ok (a bool[] scalar) is false:
// new = select(ok, new, old). Names in except are left ungated.
func (s *StateSet) Gate(ok *ir.Value, except ...string) {
	skip := map[string]bool{}
	for _, n := range except {
		skip[n] = true
	}
	for _, n := range s.order {
		nv := s.next[n]
		if nv == nil || skip[n] {
			continue
		}
		old := s.cur[n]
		s.next[n] = s.B.Select(s.B.Broadcast(ok, old.Type.Shape, []int{}), nv, old)
	}
}

// Results returns the names and new values of every state that was Set,
// in declaration order; a declared state never Set is an error.
func (s *StateSet) Results() ([]string, []*ir.Value, error) {
	var names []string
	var vals []*ir.Value
	for _, n := range s.order {
		v := s.next[n]
		if v == nil {
			return nil, nil, fmt.Errorf("state %s declared but never updated", n)
		}
		names = append(names, n)
		vals = append(vals, v)
	}
	return names, vals, nil
}

// Track registers an existing parameter (a model weight) as state, so that
// Set, Gate and Results treat it like declared state.
func (s *StateSet) Track(p *ir.Value) {
	if s.cur[p.Name] == nil {
		s.cur[p.Name] = p
		s.order = append(s.order, p.Name)
	}
}
