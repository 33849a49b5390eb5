package bench

import (
	"context"
	"time"

	"github.com/votingpipe/voting/local/harness"
	"github.com/votingpipe/voting/shared/dashboard"
)

// RenderCost is the dashboard render of the full-speed election's final
// snapshot (read from its database), with the results by state (the map
// coloured by leader) and with the same snapshot's results by state left
// out.
type RenderCost struct {
	States     int `json:"states"`
	Candidates int `json:"candidates"`
	// Milliseconds per dashboard.Render, the mean over Renders renders
	// each way.
	WithMapMs    float64 `json:"with_map_ms_per_render"`
	WithoutMapMs float64 `json:"without_results_by_state_ms_per_render"`
	Renders      int     `json:"renders"`
	// Size of index.html and of every file of the page.
	WithMapIndexBytes    int `json:"with_map_index_bytes"`
	WithoutMapIndexBytes int `json:"without_results_by_state_index_bytes"`
	WithMapPageBytes     int `json:"with_map_page_bytes"`
	WithoutMapPageBytes  int `json:"without_results_by_state_page_bytes"`
}

// renderCost renders the election's snapshot as the dashboard function
// does (its title and refresh), alternating with and without its results by
// state so that both see the same noise, for at least a second and 20
// renders each.
func renderCost(ctx context.Context, env *harness.Env) (RenderCost, error) {
	snap, err := env.Deps.Store.Snapshot(ctx)
	if err != nil {
		return RenderCost{}, err
	}
	c := env.Config.Dashboard
	opts := dashboard.Options{Title: c.Title, RefreshSeconds: c.RefreshSeconds}
	rc := RenderCost{States: len(snap.States), Candidates: len(snap.Candidates)}
	bare := snap
	bare.Results = nil
	var spent [2]time.Duration
	var pages [2]dashboard.Page
	start := time.Now()
	for rc.Renders < 20 || time.Since(start) < time.Second {
		for i, s := range []dashboard.Snapshot{snap, bare} {
			at := time.Now()
			if pages[i], err = dashboard.Render(s, opts); err != nil {
				return rc, err
			}
			spent[i] += time.Since(at)
		}
		rc.Renders++
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(rc.Renders) }
	size := func(p dashboard.Page) int { i, _ := p.File(dashboard.IndexFile); return len(i.Body) }
	rc.WithMapMs, rc.WithoutMapMs = ms(spent[0]), ms(spent[1])
	rc.WithMapIndexBytes, rc.WithoutMapIndexBytes = size(pages[0]), size(pages[1])
	rc.WithMapPageBytes, rc.WithoutMapPageBytes = pages[0].Size(), pages[1].Size()
	return rc, nil
}
