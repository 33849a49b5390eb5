package harness

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress is one reading of the pipeline's progress.
type Progress struct {
	Voters    int64 // on the roll
	Voting    int64 // of them, those who vote (once the roll is complete)
	Published int64 // voters on voters_topic
	Cast      int64 // votes on votes_topic
	Tallied   int64 // votes counted
	Rejected  int64 // votes_topic records not counted
	Rate      float64
	Lag       map[string]int64 // consumer lag by function
}

// expected is the votes to wait for: the voters who vote once the roll is
// complete, the roll until then.
func (p Progress) expected() int64 {
	if p.Voting > 0 {
		return p.Voting
	}
	return p.Voters
}

func (p Progress) lagTotal() int64 {
	var n int64
	for _, l := range p.Lag {
		n += l
	}
	return n
}

func (p Progress) String() string {
	return fmt.Sprintf("published %d/%d · cast %d · tallied %d · rejected %d · %.0f votes/s · lag %d",
		p.Published, p.Voters, p.Cast, p.Tallied, p.Rejected, p.Rate, p.lagTotal())
}

// reporter shows progress as a live bar on a terminal, or as a log line
// every few seconds otherwise.
type reporter struct {
	w        io.Writer
	bar      *progressbar.ProgressBar
	log      *slog.Logger
	every    time.Duration
	lastLine time.Time
}

func newReporter(w io.Writer, terminal bool, log *slog.Logger) *reporter {
	r := &reporter{w: w, log: log, every: 5 * time.Second}
	if terminal {
		r.bar = progressbar.NewOptions64(1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetWidth(24),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetDescription("tallied"),
			progressbar.OptionShowDescriptionAtLineEnd(),
		)
	}
	return r
}

func (r *reporter) update(p Progress) {
	if r.bar != nil {
		if want := p.expected(); want > 0 && r.bar.GetMax64() != want {
			r.bar.ChangeMax64(want)
		}
		r.bar.Describe(p.String())
		r.bar.Set64(p.Tallied) //nolint:errcheck // display only
		return
	}
	if time.Since(r.lastLine) >= r.every {
		r.lastLine = time.Now()
		r.log.Info("progress", "published", p.Published, "voters", p.Voters, "voting", p.Voting, "cast", p.Cast,
			"tallied", p.Tallied, "rejected", p.Rejected, "votes_per_s", int64(p.Rate), "lag", p.lagTotal())
	}
}

func (r *reporter) finish() {
	if r.bar != nil {
		r.bar.Finish() //nolint:errcheck
		fmt.Fprintln(r.w)
	}
}
