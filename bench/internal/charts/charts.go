// Package charts draws the SVG charts of the benchmark and resilience
// reports with gonum.org/v1/plot: curves of a figure against a size, and
// latency over time under a fault.
package charts

import (
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Point is one measurement of a curve.
type Point struct{ X, Y float64 }

// Series is one named curve.
type Series struct {
	Name   string
	Points []Point
}

// Curves describes a chart of curves.
type Curves struct {
	Title, XLabel, YLabel string
	// LogX and LogY use logarithmic axes (points <= 0 are left out).
	LogX, LogY bool
	Series     []Series
}

// Size of every chart.
const (
	width  = 16 * vg.Centimeter
	height = 10 * vg.Centimeter
)

// WriteCurves draws c as an SVG file at path.
func WriteCurves(path string, c Curves) error {
	p := plot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = c.XLabel
	p.Y.Label.Text = c.YLabel
	logAxis(&p.X, c.LogX)
	logAxis(&p.Y, c.LogY)
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	drawn := 0
	for i, s := range c.Series {
		xys := points(s.Points, c.LogX, c.LogY)
		if len(xys) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i)
		sc.Color = plotutil.Color(i)
		sc.Shape = plotutil.Shape(i)
		p.Add(l, sc)
		p.Legend.Add(s.Name, l, sc)
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("%s: no data", c.Title)
	}
	return p.Save(width, height, path)
}

func logAxis(a *plot.Axis, on bool) {
	if on {
		a.Scale = plot.LogScale{}
		a.Tick.Marker = plot.LogTicks{Prec: -1}
	}
}

func points(ps []Point, logX, logY bool) plotter.XYs {
	var xys plotter.XYs
	for _, pt := range ps {
		if (logX && pt.X <= 0) || (logY && pt.Y <= 0) || math.IsNaN(pt.X) || math.IsNaN(pt.Y) {
			continue
		}
		xys = append(xys, plotter.XY{X: pt.X, Y: pt.Y})
	}
	sort.Slice(xys, func(i, j int) bool { return xys[i].X < xys[j].X })
	return xys
}

// palette has a distinct colour for each of up to 10 contenders (the fault
// suite has 8).
var palette = []color.Color{
	color.RGBA{R: 31, G: 119, B: 180, A: 255}, color.RGBA{R: 255, G: 127, B: 14, A: 255},
	color.RGBA{R: 44, G: 160, B: 44, A: 255}, color.RGBA{R: 214, G: 39, B: 40, A: 255},
	color.RGBA{R: 148, G: 103, B: 189, A: 255}, color.RGBA{R: 140, G: 86, B: 75, A: 255},
	color.RGBA{R: 227, G: 119, B: 194, A: 255}, color.RGBA{R: 127, G: 127, B: 127, A: 255},
	color.RGBA{R: 188, G: 189, B: 34, A: 255}, color.RGBA{R: 23, G: 190, B: 207, A: 255},
}

// Window is one contender's latency over time.
type Window struct {
	Name string
	// At are the windows' start times in seconds; P50, P99 in ms (0: no
	// finished request); Fails the failed requests per window.
	At, P50, P99 []float64
	Fails        []int
}

// Timeline describes a latency-over-time chart of one fault scenario.
type Timeline struct {
	Title string
	// FaultFrom and FaultTo bound the shaded fault window in seconds (both
	// 0: no fault).
	FaultFrom, FaultTo float64
	Contenders         []Window
}

// WriteTimeline draws t as an SVG file at path: per contender its p99
// (solid) and p50 (dotted) latency per window on a log axis, the fault
// window shaded, and a cross above the curves at each window where the
// contender had failures.
func WriteTimeline(path string, t Timeline) error {
	p := plot.New()
	p.Title.Text = t.Title
	p.X.Label.Text = "seconds since the load started"
	p.Y.Label.Text = "latency, ms (solid p99, dotted p50; x: failures)"
	logAxis(&p.Y, true)
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(7)
	p.Legend.ThumbnailWidth = vg.Points(14)
	lo, hi, end := math.Inf(1), 0.0, 0.0
	for _, c := range t.Contenders {
		for i := range c.At {
			for _, v := range []float64{c.P50[i], c.P99[i]} {
				if v > 0 {
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
			}
			end = math.Max(end, c.At[i])
		}
	}
	if hi == 0 {
		return fmt.Errorf("%s: no data", t.Title)
	}
	failY := hi * 2
	if t.FaultTo > t.FaultFrom {
		shade, err := plotter.NewPolygon(plotter.XYs{
			{X: t.FaultFrom, Y: lo / 2}, {X: t.FaultTo, Y: lo / 2}, {X: t.FaultTo, Y: failY * 2}, {X: t.FaultFrom, Y: failY * 2},
		})
		if err != nil {
			return err
		}
		shade.Color = color.NRGBA{R: 255, G: 170, B: 170, A: 90}
		shade.LineStyle.Width = 0
		p.Add(shade)
		p.Legend.Add("fault", shade)
	}
	for i, c := range t.Contenders {
		col := palette[i%len(palette)]
		var p50, p99, fails plotter.XYs
		for j, at := range c.At {
			mid := at
			if c.P50[j] > 0 {
				p50 = append(p50, plotter.XY{X: mid, Y: c.P50[j]})
			}
			if c.P99[j] > 0 {
				p99 = append(p99, plotter.XY{X: mid, Y: c.P99[j]})
			}
			if c.Fails[j] > 0 {
				// Each contender's marks on its own row above the curves.
				fails = append(fails, plotter.XY{X: mid, Y: failY * math.Pow(1.25, float64(i))})
			}
		}
		if len(p99) > 0 {
			l, err := plotter.NewLine(p99)
			if err != nil {
				return err
			}
			l.Color = col
			l.Width = vg.Points(1)
			p.Add(l)
			p.Legend.Add(c.Name, l)
		}
		if len(p50) > 0 {
			l, err := plotter.NewLine(p50)
			if err != nil {
				return err
			}
			l.Color = col
			l.Width = vg.Points(0.7)
			l.Dashes = []vg.Length{vg.Points(1), vg.Points(2)}
			p.Add(l)
		}
		if len(fails) > 0 {
			s, err := plotter.NewScatter(fails)
			if err != nil {
				return err
			}
			s.Color = col
			s.Shape = draw.CrossGlyph{}
			s.Radius = vg.Points(2.5)
			p.Add(s)
		}
	}
	p.X.Min, p.X.Max = 0, end+0.25
	p.Y.Min, p.Y.Max = lo/2, failY*math.Pow(1.25, float64(len(t.Contenders)))
	return p.Save(width, 15*vg.Centimeter, path)
}
