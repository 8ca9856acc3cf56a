package runtime

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestProgressPlain(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf, 1000, 0)
	for s := int64(1); s <= 1000; s++ {
		p.Update(s, []Named{{Name: "loss", Value: 2.5}}, 1234.4)
	}
	p.Finish()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	if !strings.HasPrefix(lines[0], "step 20/1000  loss 2.5000  1234 tok/s  eta ") ||
		!strings.HasPrefix(lines[49], "step 1000/1000  loss 2.5000  1234 tok/s  eta 0s") {
		t.Fatalf("lines %q ... %q", lines[0], lines[49])
	}
	if strings.ContainsAny(buf.String(), "\r\x1b") {
		t.Fatal("plain output redraws")
	}
}

func TestProgressResumeInterrupted(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf, 100, 90) // resumed at 90: a line every step
	for s := int64(91); s <= 95; s++ {
		p.Update(s, []Named{{Name: "loss", Value: 1}}, 10)
	}
	p.Finish() // interrupted at 95, already printed
	if n := strings.Count(buf.String(), "\n"); n != 5 || !strings.Contains(buf.String(), "step 95/100") {
		t.Fatalf("%q", buf.String())
	}
	buf.Reset()
	p = NewProgress(&buf, 1000, 0)
	p.Update(1, []Named{{Name: "loss", Value: 1}}, 10)
	p.Update(2, []Named{{Name: "loss", Value: 1}}, 10)
	p.Finish() // interrupted at 2: the unprinted last status comes out
	if !strings.HasPrefix(buf.String(), "step 2/1000  loss 1.0000  10 tok/s  eta ") {
		t.Fatalf("%q", buf.String())
	}
}

func TestProgressTerminal(t *testing.T) {
	defer func(f func(io.Writer) bool) { isTerminal = f }(isTerminal)
	isTerminal = func(io.Writer) bool { return true }
	var buf bytes.Buffer
	p := NewProgress(&buf, 20, 5)
	for s := int64(6); s <= 20; s++ {
		p.Update(s, []Named{{Name: "mlm_loss", Value: 3.25}, {Name: "cls_loss", Value: 1.5}, {Name: "objective", Value: 2}}, 999)
	}
	p.Finish()
	out := buf.String()
	if !strings.Contains(out, "\r") || !strings.Contains(out, "(20/20)") || !strings.Contains(out, "mlm_loss 3.2500  cls_loss 1.5000  objective 2.0000  999 tok/s  eta ") || !strings.HasSuffix(out, "\n") {
		t.Fatalf("bar output %q", out)
	}
}
