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
	// Milliseconds per dashboard.Render, the mean over Renders renders.
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
// does (its title and refresh), for at least half a second and 20 renders
// each way.
func renderCost(ctx context.Context, env *harness.Env) (RenderCost, error) {
	snap, err := env.Deps.Store.Snapshot(ctx)
	if err != nil {
		return RenderCost{}, err
	}
	c := env.Config.Dashboard
	opts := dashboard.Options{Title: c.Title, RefreshSeconds: c.RefreshSeconds}
	rc := RenderCost{States: len(snap.States), Candidates: len(snap.Candidates)}
	measure := func(s dashboard.Snapshot) (ms float64, index, page int, n int, err error) {
		var p dashboard.Page
		start := time.Now()
		for n < 20 || time.Since(start) < 500*time.Millisecond {
			if p, err = dashboard.Render(s, opts); err != nil {
				return 0, 0, 0, 0, err
			}
			n++
		}
		ms = float64(time.Since(start)) / float64(time.Millisecond) / float64(n)
		i, _ := p.File(dashboard.IndexFile)
		return ms, len(i.Body), p.Size(), n, nil
	}
	if rc.WithMapMs, rc.WithMapIndexBytes, rc.WithMapPageBytes, rc.Renders, err = measure(snap); err != nil {
		return rc, err
	}
	bare := snap
	bare.Results = nil
	var n int
	if rc.WithoutMapMs, rc.WithoutMapIndexBytes, rc.WithoutMapPageBytes, n, err = measure(bare); err != nil {
		return rc, err
	}
	rc.Renders = min(rc.Renders, n)
	return rc, nil
}
