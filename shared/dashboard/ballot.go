package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"sync"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/votingpipe/voting/shared/ballotpage"
)

// BallotFile is the ballot page published beside the dashboard (with
// Options.BallotPage), pointed at the cast API.
const BallotFile = "ballot.html"

// ballotLink is the page's invitation to vote: the ballot page's address and
// its QR code (an inline SVG, so the page still needs no network).
type ballotLink struct {
	URL string
	QR  template.HTML
}

var qrCache sync.Map // url -> template.HTML

// newBallotLink returns the link to the ballot page at url ("" : none).
func newBallotLink(url string) (*ballotLink, error) {
	if url == "" {
		return nil, nil
	}
	if svg, ok := qrCache.Load(url); ok {
		return &ballotLink{URL: url, QR: svg.(template.HTML)}, nil
	}
	svg, err := qrSVG(url)
	if err != nil {
		return nil, fmt.Errorf("QR code of %s: %w", url, err)
	}
	qrCache.Store(url, svg)
	return &ballotLink{URL: url, QR: svg}, nil
}

// qrSVG draws text's QR code as one SVG path, a run of dark modules per
// subpath, with the standard quiet zone.
func qrSVG(text string) (template.HTML, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", err
	}
	bits := q.Bitmap() // with the quiet zone
	var d strings.Builder
	for y, row := range bits {
		for x := 0; x < len(row); x++ {
			if !row[x] {
				continue
			}
			run := 1
			for x+run < len(row) && row[x+run] {
				run++
			}
			fmt.Fprintf(&d, "M%d %dh%dv1h-%dz", x, y, run, run)
			x += run - 1
		}
	}
	n := len(bits)
	// Every value below is a number or the path of numbers and letters built
	// above: nothing from text reaches the markup.
	return template.HTML(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="160" height="160" role="img" aria-label="QR code of the ballot page" shape-rendering="crispEdges"><rect width="%d" height="%d" fill="#fff"/><path fill="#1d2433" d="%s"/></svg>`,
		n, n, n, n, d.String())), nil // #nosec G203 -- numbers only
}

// ballotFile is ballot.html for the cast API at api.
func ballotFile(api string) (File, error) {
	body, err := ballotpage.Render(api)
	if err != nil {
		return File{}, err
	}
	return File{Name: BallotFile, ContentType: "text/html; charset=utf-8", Body: body}, nil
}
