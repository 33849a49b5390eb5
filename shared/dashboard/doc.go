// Package dashboard renders the election's live results page and publishes
// it, locally to a directory or to an S3 bucket.
//
// The flow is Source → Render → Publisher:
//
//   - A Source gives one consistent Snapshot of the tallies
//     ((*store.Store).Snapshot reads the tally views in one read-only
//     REPEATABLE READ transaction).
//   - Render is a pure function from a Snapshot to a Page: charts are built
//     with go-echarts, their option JSON is taken from the charts and
//     encoded HTML-safe, and the page is composed with html/template, so
//     every user-supplied string (candidate names, parties, states) is text
//     wherever it lands. Render does no I/O and is tested without Postgres.
//   - A Publisher writes the page's files: DirPublisher atomically (temp file
//     and rename), S3Publisher with one PUT per file.
//
// The page is index.html plus data.js (the same data as a script that the
// open page re-loads every few seconds to update itself in place, keeping
// the table's sort and page and the charts' legend and zoom) and the
// embedded echarts bundle and map of the 50 states (us-states.js, generated
// from us-atlas; see assets/README.md) written beside it, so the page works
// from file:// with no network. Nothing in it refers to a CDN.
//
// The map colours each state by its leading candidate (Snapshot.Results),
// in the colour that candidate has on every chart: their position in
// Snapshot.Candidates picks it. Ties are grey and hatched, states without
// votes light grey; state names are matched ignoring case, and names that
// are not one of the 50 are left off the map (the table still shows them).
//
// Processor ties the three together for the dashboard function: each
// invocation, however many records it carries, renders once from Postgres;
// the records of the aggregated topics are only the trigger.
package dashboard
