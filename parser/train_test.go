package parser

import (
	"strings"
	"testing"
)

const trainSrc = `model m {
  config {
    n = 4
  }
  input a: f32[n]
  let h = tap("h", a * 2.0)
  output loss = sum(h)
}

train {
  optimizer = "adamw"
  lr = 1e-3
  warmup = n * 10
  weights = [1.0, 0.5]
}
`

// TestTrainSettings checks train values are evaluated with config names, and
// -D overrides both config and train keys, adding known train keys.
func TestTrainSettings(t *testing.T) {
	p, err := Compile("m.xl", []byte(trainSrc), []Define{{"n", "8"}, {"lr", "0.01"}, {"clip", "0.5"}, {"optimizer", "sgd"}}, "clip", "lr")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, s := range p.Train {
		got[s.Name] = s.Value
	}
	if got["lr"] != 0.01 || got["warmup"] != int64(80) || got["clip"] != 0.5 || got["optimizer"] != "sgd" {
		t.Errorf("train settings %v", got)
	}
	if w, ok := got["weights"].([]any); !ok || len(w) != 2 {
		t.Errorf("weights %v", got["weights"])
	}
	if p.Taps["h"] == nil || p.Taps["h"].Type.String() != "f32[8]" {
		t.Errorf("tap h: %v", p.Taps["h"])
	}
	_, err = Compile("m.xl", []byte(trainSrc), []Define{{"bogus", "1"}}, "clip")
	if err == nil || !strings.Contains(err.Error(), "-D bogus: unknown config key") {
		t.Errorf("unknown key: %v", err)
	}
	_, err = Compile("m.xl", []byte(trainSrc), []Define{{"lr", "fast"}})
	if err == nil || !strings.Contains(err.Error(), "-D lr=fast: want a number") {
		t.Errorf("bad train value: %v", err)
	}
}
