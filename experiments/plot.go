package experiments

import (
	"path/filepath"

	"xlc/runtime"
)

// A Plot is a PNG in the report: File (in the output folder), the chart's
// look, and its series of (x, y) points by name.
type Plot struct {
	File string
	runtime.Chart
	Series map[string][][2]float64
}

// Plot writes p into the output folder and adds it to the report.
func (r *Run) Plot(p Plot) error {
	if err := runtime.PlotChart(filepath.Join(r.Out, p.File), p.Chart, p.Series); err != nil {
		return err
	}
	r.plots = append(r.plots, p)
	return nil
}
