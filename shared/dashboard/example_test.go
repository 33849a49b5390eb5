package dashboard_test

import (
	"fmt"
	"time"

	"github.com/votingpipe/voting/shared/dashboard"
)

// Render turns a snapshot into the files of the page; a Publisher writes
// them (here they are only listed).
func ExampleRender() {
	snap := dashboard.Snapshot{
		Election:   "Town council 2026",
		TakenAt:    time.Date(2026, 11, 3, 20, 0, 5, 0, time.UTC),
		NewestVote: time.Date(2026, 11, 3, 20, 0, 4, 0, time.UTC),
		Registered: 1000,
		Counted:    600,
		Candidates: []dashboard.Candidate{
			{ID: "a", Name: "Ada", Party: "Analytical", Votes: 350},
			{ID: "b", Name: "Bob", Party: "Builders", Votes: 250},
		},
		States: []dashboard.Turnout{{Key: "Vermont", Votes: 600, Registered: 1000}},
		// Votes per candidate per state, in Candidates order: Ada leads Vermont.
		Results: []dashboard.StateResult{{State: "Vermont", Votes: []int64{350, 250}}},
	}
	page, err := dashboard.Render(snap, dashboard.Options{Title: "Results"})
	if err != nil {
		panic(err)
	}
	for _, f := range page.Files {
		fmt.Printf("%-20s %-32s static=%v\n", f.Name, f.ContentType, f.Static)
	}
	// Output:
	// echarts.min.js       text/javascript; charset=utf-8   static=true
	// us-states.js         text/javascript; charset=utf-8   static=true
	// echarts.LICENSE.txt  text/plain; charset=utf-8        static=true
	// data.js              text/javascript; charset=utf-8   static=false
	// index.html           text/html; charset=utf-8         static=false
}
