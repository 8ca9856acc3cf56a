package main

import (
	"encoding/json"
	"fmt"
	"io"

	"xlc/driver"
	"xlc/parser"
	"xlc/runtime"
)

func cmdSample(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sample", stdout)
	prompt := fs.String("prompt", "", "text to continue")
	tokens := fs.Int("tokens", 200, "bytes to generate")
	temperature := fs.Float64("temperature", 0.8, "softmax temperature; 0 picks the most likely byte")
	seed := fs.Uint64("seed", 1, "seed for sampling")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("xlc sample: want one checkpoint file, have %d (see xlc help)", len(pos))
	}
	if *tokens < 0 {
		return fmt.Errorf("xlc sample: --tokens must be >= 0")
	}
	tensors, meta, err := runtime.LoadCheckpoint(pos[0])
	if err != nil {
		return fmt.Errorf("xlc sample: %v", err)
	}
	src, ok := meta["model_source"]
	if !ok {
		return fmt.Errorf("xlc sample: %s records no model (was it written by xlc train?)", pos[0])
	}
	var defs []parser.Define
	if err := json.Unmarshal([]byte(meta["defines"]), &defs); err != nil {
		return fmt.Errorf("xlc sample: %s: bad defines metadata: %v", pos[0], err)
	}
	defs = append(defs, parser.Define{Key: "batch", Value: "1"})
	f, err := driver.Tapped(meta["model_path"], []byte(src), defs, "logits")
	if err != nil {
		return fmt.Errorf("xlc sample: %v", err)
	}
	for _, p := range f.Params {
		if p.Role() != "param" {
			continue
		}
		if t := tensors[p.Name]; t == nil || !t.Type.Equal(p.Type) {
			return fmt.Errorf("xlc sample: %s does not match its model: parameter %s", pos[0], p.Name)
		}
	}
	exe, err := runtime.Interp{}.Load(f)
	if err != nil {
		return fmt.Errorf("xlc sample: %v", err)
	}
	text, err := runtime.Sample(exe, f, tensors, []byte(*prompt), *tokens, *temperature, *seed)
	if err != nil {
		return fmt.Errorf("xlc sample: %v", err)
	}
	fmt.Fprintf(stdout, "%s%s\n", *prompt, text)
	return nil
}
