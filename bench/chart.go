package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Redraw draws the chart of a results file again, beside it (<name>.png), and returns its path.
func Redraw(jsonFile string) (string, error) {
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		return "", err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("%s: %w", jsonFile, err)
	}
	png := strings.TrimSuffix(jsonFile, ".json") + ".png"
	return png, chart(&r, png)
}

// chart draws two panels into a PNG: first-answer latency percentiles against the offered
// rate, and the achieved rate against the offered rate, for loanflow and the baseline.
func chart(r *Result, file string) error {
	lat := plot.New()
	lat.Title.Text = "First-answer latency (from intended send time)"
	lat.X.Label.Text = "offered applications/s"
	lat.Y.Label.Text = "ms (log)"
	lat.Y.Scale = plot.LogScale{}
	lat.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	lat.X.Scale, lat.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	lat.X.Label.Text = "offered applications/s (log)"
	lat.Legend.Top, lat.Legend.Left = false, false

	rate := plot.New()
	rate.Title.Text = "Achieved against offered rate"
	rate.X.Label.Text = "offered applications/s"
	rate.Y.Label.Text = "achieved applications/s"
	rate.Legend.Top, rate.Legend.Left = true, true

	lf, bl := sorted(r.Loanflow), sorted(r.Baseline)
	blue, grey := color.RGBA{B: 200, A: 255}, color.RGBA{R: 120, G: 120, B: 120, A: 255}
	shades := []color.Color{color.RGBA{G: 160, A: 255}, blue, color.RGBA{R: 220, G: 120, A: 255}, color.RGBA{R: 200, A: 255}}
	for i, p := range []struct {
		name string
		of   func(Latency) float64
	}{{"p50", func(l Latency) float64 { return l.P50 }}, {"p90", func(l Latency) float64 { return l.P90 }},
		{"p99", func(l Latency) float64 { return l.P99 }}, {"p99.9", func(l Latency) float64 { return l.P999 }}} {
		if err := addLine(lat, "loanflow "+p.name, points(lf, func(s Step) float64 { return max(p.of(s.FirstAnswer), 0.01) }), shades[i], false); err != nil {
			return err
		}
	}
	if err := addLine(lat, "baseline p99", points(bl, func(s Step) float64 { return max(s.FirstAnswer.P99, 0.01) }), grey, true); err != nil {
		return err
	}
	if err := addLine(rate, "loanflow", points(lf, func(s Step) float64 { return s.Achieved }), blue, false); err != nil {
		return err
	}
	if err := addLine(rate, "baseline", points(bl, func(s Step) float64 { return s.Achieved }), grey, true); err != nil {
		return err
	}
	top := 0.0
	for _, s := range append(slices.Clone(lf), bl...) {
		top = max(top, s.Offered)
	}
	ideal, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: top, Y: top}})
	if err != nil {
		return err
	}
	ideal.Color, ideal.Dashes = color.RGBA{R: 180, G: 180, B: 180, A: 255}, []vg.Length{vg.Points(2), vg.Points(2)}
	rate.Add(ideal)
	rate.Legend.Add("offered = achieved", ideal)

	img := vgimg.New(8*vg.Inch, 9*vg.Inch)
	dc := draw.New(img)
	canvases := plot.Align([][]*plot.Plot{{lat}, {rate}}, draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Points(12)}, dc)
	lat.Draw(canvases[0][0])
	rate.Draw(canvases[1][0])
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func sorted(s []Step) []Step {
	s = slices.Clone(s)
	slices.SortStableFunc(s, func(a, b Step) int { return cmp.Compare(a.Offered, b.Offered) })
	return s
}

func points(steps []Step, y func(Step) float64) plotter.XYs {
	xy := make(plotter.XYs, 0, len(steps))
	for _, s := range steps {
		xy = append(xy, plotter.XY{X: s.Offered, Y: y(s)})
	}
	return xy
}

func addLine(p *plot.Plot, name string, xy plotter.XYs, c color.Color, dashed bool) error {
	if len(xy) == 0 {
		return nil
	}
	l, s, err := plotter.NewLinePoints(xy)
	if err != nil {
		return err
	}
	l.Color, s.Color = c, c
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}
