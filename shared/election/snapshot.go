package election

import "time"

// The read side of an election: everything the dashboard shows, as of one
// instant, read by the store in one consistent snapshot.

// DefaultMaxPoints is how many instants a timeline is bucketed or
// downsampled to by default: plenty for a chart a few hundred pixels wide.
const DefaultMaxPoints = 500

// Snapshot is everything the page shows, as of one instant.
type Snapshot struct {
	// Election is the election's name ("" when none is registered yet).
	Election string
	// TakenAt is when the snapshot was read.
	TakenAt time.Time
	// NewestVote is the voting time of the newest counted vote, to the
	// second (zero when no vote is counted).
	NewestVote time.Time

	// Registered is the number of voters on the roll.
	Registered int64
	// Counted is the number of votes counted.
	Counted int64
	// Rejected counts the records of votes_topic that were not counted, by
	// reason (see Reason); ReasonDuplicate is shown apart.
	Rejected map[string]int64

	// Candidates with their totals, in a stable order (the store gives them
	// by ID); the order fixes each candidate's colour across renders.
	Candidates []CandidateResult

	// States, Genders and AgeBands are turnout by dimension, in any order
	// (the dashboard sorts states and genders by name and age bands by
	// election.AgeBands).
	States   []Turnout
	Genders  []Turnout
	AgeBands []Turnout

	// Results are votes per candidate per state, in any order; states with
	// no votes may be absent.
	Results []StateResult

	// Timeline is cumulative votes per candidate over voting time.
	Timeline Timeline
}

// CandidateResult is one candidate and their running total.
type CandidateResult struct {
	ID    string
	Name  string
	Party string
	// PhotoURL is shown when it is an inline data:image/ URL, an http(s)
	// URL or an avatar reference (package avatar); anything else is dropped.
	PhotoURL string
	Votes    int64
}

// Turnout is votes counted against voters registered for one value of a
// dimension (a state, a gender, an age band).
type Turnout struct {
	Key        string
	Votes      int64
	Registered int64
}

// StateResult is one state's votes per candidate.
type StateResult struct {
	State string
	// Votes[i] are the votes for Candidates[i] (the snapshot's candidate order).
	Votes []int64
}

// Timeline is cumulative votes per candidate over voting time, sampled at
// shared instants. No vote precedes the first instant's bucket, so the
// dashboard draws each line from zero just before it.
type Timeline struct {
	// Times are ascending sample instants (the end of each bucket).
	Times []time.Time
	// Series holds one cumulative count per Times entry for each candidate.
	Series []TimelineSeries
}

// TimelineSeries is one candidate's cumulative votes at each Timeline.Times
// instant: Cumulative[i] votes were counted with a voting time up to Times[i].
type TimelineSeries struct {
	CandidateID string
	Cumulative  []int64
}

// Downsample returns the timeline with at most max sample instants (max < 2
// means 2). Counts are cumulative, so keeping the last instant of each of max
// equal runs loses no total: every kept point is exact, and the last point is
// always kept.
func (t Timeline) Downsample(max int) Timeline {
	n := len(t.Times)
	if max < 2 {
		max = 2
	}
	if n <= max {
		return t
	}
	idx := make([]int, max)
	for k := range max {
		// Ends of max equal runs over [0, n): the last index is n-1.
		idx[k] = (k+1)*n/max - 1
	}
	out := Timeline{Times: make([]time.Time, max), Series: make([]TimelineSeries, len(t.Series))}
	for k, i := range idx {
		out.Times[k] = t.Times[i]
	}
	for s, ser := range t.Series {
		c := make([]int64, max)
		for k, i := range idx {
			if i < len(ser.Cumulative) {
				c[k] = ser.Cumulative[i]
			} else if len(ser.Cumulative) > 0 {
				c[k] = ser.Cumulative[len(ser.Cumulative)-1]
			}
		}
		out.Series[s] = TimelineSeries{CandidateID: ser.CandidateID, Cumulative: c}
	}
	return out
}
