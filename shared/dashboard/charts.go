package dashboard

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"

	"github.com/votingpipe/voting/shared/election"
)

// Chart IDs: the element IDs of the page's charts, stable across renders so
// that the page script updates each chart in place.
const (
	ChartVotesBar      = "votes-bar"
	ChartVotesDonut    = "votes-donut"
	ChartStateMap      = "state-map"
	ChartStateTurnout  = "state-turnout"
	ChartTimeline      = "votes-timeline"
	ChartGenderTurnout = "gender-turnout"
	ChartAgeTurnout    = "age-turnout"
)

// ChartIDs lists every chart the page draws, in page order.
var ChartIDs = []string{ChartVotesBar, ChartVotesDonut, ChartStateMap, ChartStateTurnout, ChartTimeline, ChartGenderTurnout, ChartAgeTurnout}

// jsonChart is the part of a go-echarts chart that Render uses: its options
// as a map (after Validate has filled in defaults).
type jsonChart interface {
	Validate()
	JSON() map[string]any
}

// optionJSON encodes a chart's echarts option for a <script> element.
//
// It deliberately does not use RenderSnippet().Option: that string is built
// with JSONNotEscaped, then html.UnescapeString'd (so a name spelled
// "&lt;b&gt;" arrives as "<b>") and stripped of go-echarts' "__f__" function
// markers (so a candidate named `__f__alert(1)__f__` becomes live code once
// the option is evaluated as JavaScript). encoding/json's default HTML-safe
// output writes <, > and & as \u003c, \u003e, \u0026 (and U+2028/2029
// escaped), so no `</script` or `<!--` can occur, and every string stays a
// string. scriptSafe then guards the invariant.
func optionJSON(c jsonChart) (rawJSON, error) {
	c.Validate()
	b, err := json.Marshal(c.JSON())
	if err != nil {
		return nil, err
	}
	return scriptSafe(b), nil
}

// scriptSafe escapes the two sequences that could end or confuse a <script>
// element's text ("</" and "<!--") in JSON or JavaScript text. JSON encoded
// by encoding/json never contains them; this keeps that true for any input.
func scriptSafe(b []byte) []byte {
	if bytes.Contains(b, []byte("</")) {
		b = bytes.ReplaceAll(b, []byte("</"), []byte(`<\/`))
	}
	if bytes.Contains(b, []byte("<!--")) {
		b = bytes.ReplaceAll(b, []byte("<!--"), []byte(`<\!--`))
	}
	return b
}

func initOpts(id string) charts.GlobalOpts {
	// AssetsHost is never used (the page is composed by our own template and
	// loads echarts.min.js from beside itself), but is cleared so that the
	// go-echarts CDN default is not kept in the chart at all.
	return charts.WithInitializationOpts(opts.Initialization{ChartID: id, Width: "100%", Height: "360px", AssetsHost: "./"})
}

var (
	noLegend    = charts.WithLegendOpts(opts.Legend{Show: opts.Bool(false)})
	axisTooltip = charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"})
	itemTooltip = charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "item"})
	gridOpts    = charts.WithGridOpts(opts.Grid{Left: "3%", Right: "4%", Top: "12%", Bottom: "3%", ContainLabel: opts.Bool(true)})
)

// buildCharts draws the page's charts from the snapshot, each as echarts
// option JSON, in ChartIDs order.
func buildCharts(s Snapshot, o Options, rk []ranked, states []mapItem) ([]chartView, error) {
	type built struct {
		id, title string
		height    int
		wide      bool
		c         jsonChart
	}
	list := []built{
		{ChartVotesBar, "Votes per candidate", 360, false, votesBar(rk)},
		{ChartVotesDonut, "Share of votes", 360, false, votesDonut(rk)},
		// The map's height follows its width (CSS aspect-ratio).
		{ChartStateMap, "Results by state: who leads each state", 0, true, stateMap(states)},
		{ChartStateTurnout, "Turnout by state (%)", 380, true, turnoutBar(ChartStateTurnout, sortedTurnout(s.States, nil), true)},
		{ChartTimeline, "Votes over time (cumulative)", 380, true, timeline(s, o, rk)},
		{ChartGenderTurnout, "Turnout by gender", 300, false, turnoutBar(ChartGenderTurnout, sortedTurnout(s.Genders, nil), false)},
		{ChartAgeTurnout, "Turnout by age band", 300, false, turnoutBar(ChartAgeTurnout, sortedTurnout(s.AgeBands, election.AgeBands), false)},
	}
	out := make([]chartView, len(list))
	for i, b := range list {
		opt, err := optionJSON(b.c)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", b.id, err)
		}
		out[i] = chartView{ID: b.id, Title: b.title, Height: b.height, Wide: b.wide, Option: opt}
	}
	return out, nil
}

// usMapName is the name assets/us-states.js registers its map under.
const usMapName = "us-states"

// usMap is a go-echarts map chart whose one series is ours: go-echarts'
// map series has neither aspectScale nor styled data items.
type usMap struct {
	*charts.Map
	series mapSeries
}

type mapSeries struct {
	charts.SingleSeries
	// AspectScale 1: us-states.js is already projected (Albers), so it is
	// drawn as is; echarts' default 0.75 would squash it.
	AspectScale float64 `json:"aspectScale"`
	// ShowLegendSymbol false: no dot on each state.
	ShowLegendSymbol bool      `json:"showLegendSymbol"`
	Data             []mapItem `json:"data"`
}

func (m usMap) JSON() map[string]any {
	o := m.Map.JSON()
	o["series"] = []mapSeries{m.series}
	return o
}

// stateMap colours each state with votes by its leader (a tie grey and
// hatched); states without votes keep the light grey of the base style. The
// page script adds the tooltip's formatter, which writes each item's tip as
// text.
func stateMap(items []mapItem) usMap {
	m := charts.NewMap()
	m.SetGlobalOptions(initOpts(ChartStateMap), itemTooltip, noLegend)
	if items == nil {
		items = []mapItem{}
	}
	return usMap{Map: m, series: mapSeries{
		SingleSeries: charts.SingleSeries{
			Name: "Leader", Type: "map", MapType: usMapName, Roam: opts.Bool(false), SelectedMode: opts.Bool(false),
			Left: "2%", Right: "2%", Top: "2%", Bottom: "2%",
			ItemStyle: &opts.ItemStyle{AreaColor: noVotesColor, BorderColor: "#fff", BorderWidth: 0.8},
			// Hovering outlines the state and keeps its colour ("inherit").
			Emphasis: &opts.Emphasis{Label: &opts.Label{Show: opts.Bool(false)},
				ItemStyle: &opts.ItemStyle{AreaColor: "inherit", BorderColor: "#1d2433", BorderWidth: 1.5}},
		},
		AspectScale: 1,
		Data:        items,
	}}
}

func votesBar(rk []ranked) *charts.Bar {
	bar := charts.NewBar()
	bar.SetGlobalOptions(initOpts(ChartVotesBar), axisTooltip, noLegend, gridOpts,
		charts.WithXAxisOpts(opts.XAxis{AxisLabel: &opts.AxisLabel{Interval: "0", Rotate: rotateFor(len(rk), 4),
			Width: 120, Overflow: "truncate"}}),
		charts.WithYAxisOpts(opts.YAxis{Name: "votes", MinInterval: 1}),
	)
	names := make([]string, len(rk))
	data := make([]opts.BarData, len(rk))
	for i, c := range rk {
		names[i] = c.Name
		data[i] = opts.BarData{Name: c.Name, Value: c.Votes, ItemStyle: &opts.ItemStyle{Color: c.color}}
	}
	bar.SetXAxis(names).AddSeries("Votes", data,
		charts.WithLabelOpts(opts.Label{Show: opts.Bool(true), Position: "top"}))
	return bar
}

func votesDonut(rk []ranked) *charts.Pie {
	pie := charts.NewPie()
	pie.SetGlobalOptions(initOpts(ChartVotesDonut), itemTooltip,
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Type: "scroll", Bottom: "0"}))
	data := make([]opts.PieData, len(rk))
	for i, c := range rk {
		data[i] = opts.PieData{Name: c.Name, Value: c.Votes, ItemStyle: &opts.ItemStyle{Color: c.color}}
	}
	pie.AddSeries("Votes", data,
		charts.WithPieChartOpts(opts.PieChart{Radius: []string{"45%", "70%"}, Center: []string{"50%", "45%"}}),
		charts.WithLabelOpts(opts.Label{Show: opts.Bool(true), Formatter: "{d}%"}),
		charts.WithItemStyleOpts(opts.ItemStyle{BorderColor: "#fff", BorderWidth: 2}))
	return pie
}

// sortedTurnout orders turnout rows by order's position when given (keys
// not in it last), else by key.
func sortedTurnout(ts []Turnout, order []string) []Turnout {
	out := slices.Clone(ts)
	pos := func(k string) int {
		if i := slices.Index(order, k); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortFunc(out, func(a, b Turnout) int {
		return cmp.Or(cmp.Compare(pos(a.Key), pos(b.Key)), cmp.Compare(a.Key, b.Key))
	})
	return out
}

// turnoutBar charts turnout percentage per key; the tooltip shows it, and
// the votes and registered counts are in the matching table or tiles.
func turnoutBar(id string, rows []Turnout, zoom bool) *charts.Bar {
	bar := charts.NewBar()
	g := []charts.GlobalOpts{initOpts(id), axisTooltip, noLegend, gridOpts,
		charts.WithXAxisOpts(opts.XAxis{AxisLabel: &opts.AxisLabel{Interval: "0", Rotate: rotateFor(len(rows), 8)}}),
		charts.WithYAxisOpts(opts.YAxis{Name: "turnout %", Min: 0}),
	}
	if zoom && len(rows) > 25 {
		// 50+ states stay legible: show 25 at a time, scroll with the slider.
		g = append(g, charts.WithDataZoomOpts(
			opts.DataZoom{Type: "inside", Start: 0, End: 100 * 25 / float32(len(rows))},
			opts.DataZoom{Type: "slider", Start: 0, End: 100 * 25 / float32(len(rows))}))
		g = append(g, charts.WithGridOpts(opts.Grid{Left: "3%", Right: "4%", Top: "12%", Bottom: "40", ContainLabel: opts.Bool(true)}))
	}
	bar.SetGlobalOptions(g...)
	keys := make([]string, len(rows))
	data := make([]opts.BarData, len(rows))
	for i, r := range rows {
		keys[i] = r.Key
		pct := 0.0
		if r.Registered > 0 {
			pct = float64(r.Votes*1000/r.Registered) / 10
		}
		data[i] = opts.BarData{Name: r.Key, Value: pct}
	}
	bar.SetXAxis(keys).AddSeries("Turnout %", data,
		charts.WithItemStyleOpts(opts.ItemStyle{Color: "#5470c6"}))
	return bar
}

func timeline(s Snapshot, o Options, rk []ranked) *charts.Line {
	line := charts.NewLine()
	line.SetGlobalOptions(initOpts(ChartTimeline), axisTooltip, gridOpts,
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Type: "scroll", Top: "0"}),
		charts.WithXAxisOpts(opts.XAxis{Type: "time"}),
		charts.WithYAxisOpts(opts.YAxis{Name: "votes", MinInterval: 1}),
		charts.WithDataZoomOpts(opts.DataZoom{Type: "inside", Start: 0, End: 100}),
	)
	tl := s.Timeline.Downsample(o.MaxTimelinePoints)
	byID := make(map[string]TimelineSeries, len(tl.Series))
	for _, ser := range tl.Series {
		byID[ser.CandidateID] = ser
	}
	ms := make([]int64, len(tl.Times))
	for i, t := range tl.Times {
		ms[i] = t.UnixMilli()
	}
	// Each line starts from zero one step before the first instant (no vote
	// precedes the first bucket), so even a timeline of one instant draws.
	var start int64
	if len(ms) > 0 {
		step := int64(1000)
		if len(ms) > 1 {
			step = ms[1] - ms[0]
		}
		start = ms[0] - step
	}
	symbols := len(ms) <= 30
	// Series in ranking order, so the legend reads like the table.
	for _, c := range rk {
		ser := byID[c.ID]
		data := make([]opts.LineData, 0, len(ms)+1)
		if len(ms) > 0 {
			data = append(data, opts.LineData{Value: [2]int64{start, 0}})
		}
		for i, t := range ms {
			var n int64
			if i < len(ser.Cumulative) {
				n = ser.Cumulative[i]
			}
			data = append(data, opts.LineData{Value: [2]int64{t, n}})
		}
		line.AddSeries(c.Name, data,
			charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(symbols)}),
			charts.WithItemStyleOpts(opts.ItemStyle{Color: c.color}),
			charts.WithLineStyleOpts(opts.LineStyle{Width: 2}))
	}
	return line
}

// rotateFor tilts category labels once there are more than fit flat.
func rotateFor(n, flat int) float64 {
	if n > flat {
		return 40
	}
	return 0
}
