package console

import (
	"strconv"
	"time"

	"github.com/loanflow/loanflow/services/console/internal/stats"
)

// Charts are drawn on the server as SVG: the geometry is computed here and the templates only
// place rectangles and labels, so that the page needs no script and no chart library.

// barChart is a column chart of counts over the window's minutes.
type barChart struct {
	W, H int
	Bars []bar
	Max  int
	// MaxLabel is the maximum's caption, in the page's language.
	MaxLabel string
	Ticks    []tick
	Class    string
}

type bar struct {
	X, Y, W, H float64
	Title      string
}

type tick struct {
	X     float64
	Label string
}

const (
	chartW, chartH = 600, 140
	chartTop       = 14 // room for the maximum's label
)

// columns draws one column per minute, the tallest at full height.
func columns(counts []int, from time.Time, class string) barChart {
	c := barChart{W: chartW, H: chartH + 18, Class: class}
	for _, n := range counts {
		c.Max = max(c.Max, n)
	}
	if len(counts) == 0 {
		return c
	}
	step := float64(chartW) / float64(len(counts))
	for i, n := range counts {
		h := 0.0
		if c.Max > 0 {
			h = float64(n) / float64(c.Max) * (chartH - chartTop)
		}
		at := from.Add(time.Duration(i) * time.Minute)
		c.Bars = append(c.Bars, bar{X: float64(i)*step + 1, Y: chartH - h, W: max(step-2, 1), H: h,
			Title: at.UTC().Format("15:04") + ": " + strconv.Itoa(n)})
		if i%10 == 0 {
			c.Ticks = append(c.Ticks, tick{X: float64(i) * step, Label: at.UTC().Format("15:04")})
		}
	}
	return c
}

// hbarChart is rows of horizontal bars, each row one or two segments.
type hbarChart struct {
	W, H int
	Rows []hrow
}

type hrow struct {
	Y        float64
	Label    string
	Segments []segment
	Value    string
	ValueX   float64
}

type segment struct {
	X, W  float64
	Class string
	Title string
}

const (
	hbarLabelW = 170
	hbarW      = 330
	hbarRowH   = 26
)

func hbars(rows []hrow) hbarChart {
	for i := range rows {
		rows[i].Y = float64(i * hbarRowH)
	}
	return hbarChart{W: hbarLabelW + hbarW + 100, H: len(rows)*hbarRowH + 4, Rows: rows}
}

// latencyBars draws the percentiles of the first answer and of the time to done on one scale.
func latencyBars(s stats.Summary, lang string) hbarChart {
	type v struct {
		label string
		d     time.Duration
	}
	var vs []v
	for _, p := range []struct {
		key string
		p   stats.Percentiles
	}{{"dash.first_answer", s.FirstAnswer}, {"dash.to_done", s.TimeToDone}} {
		name := translate(lang, p.key)
		vs = append(vs, v{name + " p50", p.p.P50}, v{name + " p90", p.p.P90}, v{name + " p99", p.p.P99})
	}
	var top time.Duration
	for _, x := range vs {
		top = max(top, x.d)
	}
	rows := make([]hrow, 0, len(vs))
	for _, x := range vs {
		w := 0.0
		if top > 0 {
			w = float64(x.d) / float64(top) * hbarW
		}
		p := &page{Lang: lang}
		rows = append(rows, hrow{Label: x.label, Value: p.Dur(x.d), ValueX: hbarLabelW + w + 6,
			Segments: []segment{{X: hbarLabelW, W: w, Class: "bar"}}})
	}
	return hbars(rows)
}

// productBars draws each product's approvals and rejections as one stacked bar.
func productBars(s stats.Summary, lang string) hbarChart {
	top := 0
	for _, p := range s.Products {
		top = max(top, p.Approved+p.Rejected)
	}
	rows := make([]hrow, 0, len(s.Products))
	for _, p := range s.Products {
		scale := 0.0
		if top > 0 {
			scale = hbarW / float64(top)
		}
		wa, wr := float64(p.Approved)*scale, float64(p.Rejected)*scale
		rows = append(rows, hrow{
			Label: translate(lang, "product."+p.Product),
			Value: strconv.Itoa(p.Approved) + " / " + strconv.Itoa(p.Rejected), ValueX: hbarLabelW + wa + wr + 6,
			Segments: []segment{
				{X: hbarLabelW, W: wa, Class: "bar good", Title: translate(lang, "dash.approved") + ": " + strconv.Itoa(p.Approved)},
				{X: hbarLabelW + wa, W: wr, Class: "bar bad", Title: translate(lang, "dash.rejected") + ": " + strconv.Itoa(p.Rejected)},
			},
		})
	}
	return hbars(rows)
}
