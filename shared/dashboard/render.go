package dashboard

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"github.com/votingpipe/voting/shared/election"
	"html/template"
	"time"
)

// The files of a rendered page.
const (
	// IndexFile is the page itself.
	IndexFile = "index.html"
	// DataFile is the page's data as a script; the open page re-loads it
	// every RefreshSeconds and updates itself in place.
	DataFile = "data.js"
	// EChartsFile is the embedded echarts bundle, loaded from beside the page.
	EChartsFile = "echarts.min.js"
	// MapFile registers the map of the US states with echarts; loaded from
	// beside the page after EChartsFile.
	MapFile = "us-states.js"
	// LicenseFile carries the license and notices of echarts and of the
	// map's shapes (us-atlas).
	LicenseFile = "echarts.LICENSE.txt"
)

// Defaults of Options.
const (
	DefaultTitle             = "Live election results"
	DefaultRefreshSeconds    = 5
	DefaultMaxTimelinePoints = election.DefaultMaxPoints
)

// Options shape a rendered page.
type Options struct {
	// Title is the page title (default DefaultTitle).
	Title string
	// RefreshSeconds is how often the open page re-loads data.js (default
	// DefaultRefreshSeconds; negative turns refreshing off).
	RefreshSeconds int
	// MaxTimelinePoints bounds the votes-over-time chart's points per
	// candidate (default DefaultMaxTimelinePoints).
	MaxTimelinePoints int
	// Location is the time zone of the times shown (default UTC).
	Location *time.Location
	// BallotURL, when set, is the ballot page's address: the page shows a
	// link and a QR code to it, so the audience can vote from their phones.
	BallotURL string
	// BallotPage publishes ballot.html beside the dashboard, casting through
	// the API at BallotURL (deployed, where the cast function's origin
	// allows the dashboard's; locally the cast server serves the page).
	BallotPage bool
}

func (o Options) withDefaults() Options {
	if o.Title == "" {
		o.Title = DefaultTitle
	}
	switch {
	case o.RefreshSeconds == 0:
		o.RefreshSeconds = DefaultRefreshSeconds
	case o.RefreshSeconds < 0:
		o.RefreshSeconds = 0
	}
	if o.MaxTimelinePoints <= 0 {
		o.MaxTimelinePoints = DefaultMaxTimelinePoints
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	return o
}

// File is one file of a rendered page.
type File struct {
	// Name is the file's name relative to the page's directory or prefix.
	Name string
	// ContentType is its MIME type.
	ContentType string
	// Body is its content.
	Body []byte
	// Static files are identical on every render (the echarts bundle, the
	// map and their licenses); publishers may skip writing one that is
	// already in place.
	Static bool
}

// Page is a rendered dashboard: the files to publish, in the order to
// publish them (static files, then data.js, then index.html), so that a
// reader never gets a page whose scripts are missing.
type Page struct {
	Files []File
}

// File returns the page's file called name.
func (p Page) File(name string) (File, bool) {
	for _, f := range p.Files {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}

// Size is the total size of the page's files in bytes.
func (p Page) Size() int {
	n := 0
	for _, f := range p.Files {
		n += len(f.Body)
	}
	return n
}

//go:embed assets/echarts.min.js assets/echarts.LICENSE assets/echarts.NOTICE assets/echarts.LICENSE-d3
//go:embed assets/us-states.js assets/us-atlas.LICENSE
//go:embed assets/index.gohtml assets/dashboard.js assets/dashboard.css
var assets embed.FS

var (
	echartsJS   = mustAsset("assets/echarts.min.js")
	mapJS       = mustAsset("assets/us-states.js")
	licenseText = bytes.Join([][]byte{
		[]byte("Apache ECharts 5.4.3, embedded as echarts.min.js.\n\n"),
		mustAsset("assets/echarts.NOTICE"), []byte("\n\n"),
		mustAsset("assets/echarts.LICENSE"), []byte("\n\n--- licenses/LICENSE-d3 ---\n\n"),
		mustAsset("assets/echarts.LICENSE-d3"),
		[]byte("\n\n--- us-states.js ---\n\nThe map's shapes are from us-atlas 3.0.1 (states-albers-10m.json), derived from the\n" +
			"U.S. Census Bureau's cartographic state boundaries (2017 edition, public domain).\n\n"),
		mustAsset("assets/us-atlas.LICENSE"),
	}, nil)
	pageJS  = template.JS(mustAsset("assets/dashboard.js"))
	pageCSS = template.CSS(mustAsset("assets/dashboard.css"))
	pageTpl = template.Must(template.New("index.gohtml").ParseFS(assets, "assets/index.gohtml"))
)

func mustAsset(name string) []byte {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

// EChartsVersion is the version of the embedded echarts bundle.
const EChartsVersion = "5.4.3"

// pageData fills assets/index.gohtml.
type pageData struct {
	view
	// Ballot links to the ballot page (nil: no link).
	Ballot *ballotLink
	// Data is the view as HTML-safe JSON, for the inline start call.
	Data template.JS
	JS   template.JS
	CSS  template.CSS
}

// Render draws the snapshot as a page. It is a pure function of its
// arguments: no database, no clock, no network.
//
// Charts are built with go-echarts; their option JSON and every string of
// the page are escaped for the context they land in (html/template for the
// HTML, HTML-safe JSON for scripts), so a candidate called
// <script>alert(1)</script> shows as that text everywhere.
func Render(s Snapshot, o Options) (Page, error) {
	o = o.withDefaults()
	rk := rank(s.Candidates)
	res := stateResults(s, rk)
	items, mv := mapItems(s, rk, res)
	v := buildView(s, o, rk, res)
	v.Map = mv
	cs, err := buildCharts(s, o, rk, items)
	if err != nil {
		return Page{}, fmt.Errorf("render dashboard: %w", err)
	}
	v.Charts = cs

	data, err := json.Marshal(v)
	if err != nil {
		return Page{}, fmt.Errorf("render dashboard: %w", err)
	}
	data = scriptSafe(data)

	var dataJS bytes.Buffer
	dataJS.Grow(len(data) + 64)
	dataJS.WriteString("/* Election dashboard data; index.html re-loads this file to refresh in place. */\nvotingDashboard.update(")
	dataJS.Write(data)
	dataJS.WriteString(");\n")

	link, err := newBallotLink(o.BallotURL)
	if err != nil {
		return Page{}, fmt.Errorf("render dashboard: %w", err)
	}
	var index bytes.Buffer
	index.Grow(len(data) + 32<<10)
	if err := pageTpl.Execute(&index, pageData{view: v, Ballot: link, Data: template.JS(data), JS: pageJS, CSS: pageCSS}); err != nil {
		return Page{}, fmt.Errorf("render dashboard: %w", err)
	}

	page := Page{Files: []File{
		{Name: EChartsFile, ContentType: "text/javascript; charset=utf-8", Body: echartsJS, Static: true},
		{Name: MapFile, ContentType: "text/javascript; charset=utf-8", Body: mapJS, Static: true},
		{Name: LicenseFile, ContentType: "text/plain; charset=utf-8", Body: licenseText, Static: true},
		{Name: DataFile, ContentType: "text/javascript; charset=utf-8", Body: dataJS.Bytes()},
		{Name: IndexFile, ContentType: "text/html; charset=utf-8", Body: index.Bytes()},
	}}
	if o.BallotPage && o.BallotURL != "" {
		f, err := ballotFile(o.BallotURL)
		if err != nil {
			return Page{}, fmt.Errorf("render dashboard: %w", err)
		}
		// Before index.html: a page that links to it never links to nothing.
		page.Files = append(page.Files[:len(page.Files)-1], f, page.Files[len(page.Files)-1])
	}
	return page, nil
}
