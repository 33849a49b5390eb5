package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/store"
)

// ResetOptions tune Reset.
type ResetOptions struct {
	// StateDir is the harness's state directory (default .voting).
	StateDir string
	// Yes does it; without it Reset only says what it would do.
	Yes bool
	Out io.Writer
}

// ErrNotConfirmed is returned by Reset without ResetOptions.Yes.
var ErrNotConfirmed = errors.New("nothing was reset: run it again with --yes to do it")

// Reset starts over: it drops the election's tables (the database stays)
// and deletes the embedded broker's state and the dashboard when it is kept
// in the state directory. It never touches an external Kafka's topics or
// NATS streams: for those it says what carries the old election's records,
// which stay, and how to delete them; a new election starts after them
// anyway. It refuses while a harness runs on the state directory.
func Reset(ctx context.Context, cfg config.Config, o ResetOptions) error {
	if o.StateDir == "" {
		o.StateDir = ".voting"
	}
	w := o.Out
	if w == nil {
		w = io.Discard
	}
	brokerDir := filepath.Join(o.StateDir, "kafka")
	if _, err := os.Stat(brokerDir); err == nil {
		lock, err := lockDir(brokerDir)
		if err != nil {
			return fmt.Errorf("reset: %w", err)
		}
		defer lock.Close()
	}

	verb := map[bool]string{true: "dropping", false: "would drop"}[o.Yes]
	var st *store.Store
	if exists, err := store.DatabaseExists(ctx, cfg.Database.URL); err != nil {
		return fmt.Errorf("reset: %w", err)
	} else if exists {
		if st, err = store.Open(ctx, cfg.Database.URL, store.Options{MaxConns: 2}); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
		defer st.Close()
		desc := "no election"
		if e, err := st.Election(ctx); err == nil && e != nil {
			desc = fmt.Sprintf("election %q: %d voters, carried by %s", e.Name, e.Voters, e.Carrier)
			switch e.Carrier.Transport {
			case "nats":
				fmt.Fprintf(w, "keeping the NATS streams (%s): reset never deletes them; the next election starts after their records. "+
					"To delete them: nats stream rm %s<topic>_<partition> for each topic and partition\n", e.Carrier.Broker, cfg.NATS.StreamPrefix)
			case "kafka":
				if len(cfg.Kafka.Brokers) > 0 {
					fmt.Fprintf(w, "keeping the Kafka topics at %s (%s): reset never deletes them; the next election starts after their records\n",
						strings.Join(cfg.Kafka.Brokers, ","), e.Carrier.Broker)
				}
			}
		}
		fmt.Fprintf(w, "%s the election's tables in %s (%s)\n", verb, config.RedactedURL(cfg.Database.URL), desc)
	} else {
		fmt.Fprintf(w, "no database at %s: nothing to drop\n", config.RedactedURL(cfg.Database.URL))
	}

	var dirs []string
	for _, d := range []string{brokerDir, cfg.Dashboard.Dir} {
		if d == "" || !within(d, o.StateDir) && d != brokerDir {
			continue
		}
		if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		what := "the embedded broker's state"
		if d != brokerDir {
			what = "the dashboard"
		}
		fmt.Fprintf(w, "%s %s: %s\n", map[bool]string{true: "deleting", false: "would delete"}[o.Yes], what, d)
	}
	if !o.Yes {
		return ErrNotConfirmed
	}
	if st != nil {
		if err := st.Reset(ctx); err != nil {
			return err
		}
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
	}
	fmt.Fprintln(w, "reset: done; the next run registers a new election")
	return nil
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
