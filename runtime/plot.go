package runtime

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"xlc/internal/atomicfile"
)

// PlotLosses draws series (each a list of (step, loss) points, such as
// "train loss" and "val loss") as lines on one chart with a legend, x axis
// "step" and y axis "loss", and writes it to path as an 8x5 inch PNG,
// atomically (see PlotChart).
func PlotLosses(path string, series map[string][][2]float64, title string) error {
	return PlotChart(path, Chart{Title: title, X: "step", Y: "loss"}, series)
}

// A Chart is how PlotChart draws: its title and axis labels, a log-scaled
// y axis, and points alone (a scatter) instead of lines.
type Chart struct {
	Title, X, Y   string
	LogY, Scatter bool
}

// PlotChart draws series (lists of (x, y) points) on one chart with a
// legend and writes it to path as an 8x5 inch PNG, atomically. Series are
// drawn in name order; NaN and infinite points are left out (and points
// not above 0 on a log axis), and a series with under 50 points also gets
// markers so that a sparse one stays visible.
func PlotChart(path string, c Chart, series map[string][][2]float64) error {
	p := plot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = c.X
	p.Y.Label.Text = c.Y
	if c.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	drawn := 0
	for _, name := range slices.Sorted(maps.Keys(series)) {
		var xys plotter.XYs
		for _, pt := range series[name] {
			if plotFinite(pt[0]) && plotFinite(pt[1]) && (!c.LogY || pt[1] > 0) {
				xys = append(xys, plotter.XY{X: pt[0], Y: pt[1]})
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("%s: series %q: %v", path, name, err)
		}
		line.Color = plotutil.Color(drawn)
		points.Color = line.Color
		points.Shape = plotutil.Shape(drawn)
		drawn++
		line.Width = vg.Points(1.5)
		switch {
		case c.Scatter:
			p.Add(points)
			p.Legend.Add(name, points)
		case len(xys) < 50:
			p.Add(line, points)
			p.Legend.Add(name, line, points)
		default:
			p.Add(line)
			p.Legend.Add(name, line)
		}
	}
	w, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}

func plotFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
