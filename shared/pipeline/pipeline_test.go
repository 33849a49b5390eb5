package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votingpipe/voting/shared/ballot"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/kafkaevent"
	"github.com/votingpipe/voting/shared/pgtest"
	"github.com/votingpipe/voting/shared/pipeline"
)

func open(t *testing.T) *pipeline.Deps {
	t.Helper()
	cfg, err := config.LoadFrom(map[string]string{"DATABASE_URL": pgtest.New(t), "DASHBOARD_DIR": t.TempDir()}, config.Local)
	if err != nil {
		t.Fatal(err)
	}
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{Topics: broker.Topics(cfg.Topics, 4)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	cfg.Kafka.Brokers = emb.Addrs()
	d, err := pipeline.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), pipeline.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// Four tally invocations at once, one per partition, each batch delivered
// twice: every vote is counted once and every tally view agrees.
func TestConcurrentTallyInvocations(t *testing.T) {
	d := open(t)
	ctx := context.Background()
	reg := lambda.NewHandler(pipeline.RegisterHandler(d))
	if _, err := reg.Invoke(ctx, []byte(`{"voters": 2000, "seed": 42}`)); err != nil {
		t.Fatal(err)
	}
	cands, err := d.Store.Candidates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cs []election.Candidate
	var ws []float64
	for _, c := range cands {
		cs, ws = append(cs, c.Candidate), append(ws, c.Weight)
	}
	sheet := ballot.NewSheet(42, cs, ws)

	// Partition p gets voters i%4 == p, in batches of 100.
	const parts = 4
	events := make([][][]byte, parts)
	offsets := make([]int64, parts)
	var batch [parts][]*kgo.Record
	flush := func(p int) {
		ev, _ := json.Marshal(kafkaevent.Event(kafkaevent.Meta{Source: kafkaevent.SourceMSK}, batch[p]))
		events[p] = append(events[p], ev)
		batch[p] = nil
	}
	for i := range 2000 {
		p := i % parts
		v := generator.Voter(42, i)
		rec, _ := json.Marshal(v)
		val := sheet.Cast(nil, v.VoterID, rec, time.Now())
		batch[p] = append(batch[p], &kgo.Record{Topic: d.Config.Topics.Votes, Partition: int32(p), Offset: offsets[p],
			Timestamp: time.Now(), Key: []byte(v.VoterID), Value: val})
		offsets[p]++
		if len(batch[p]) == 100 {
			flush(p)
		}
	}

	h := lambda.NewHandler(pipeline.TallyHandler(d))
	var wg sync.WaitGroup
	errs := make(chan error, parts)
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 2 {
				for _, ev := range events[p] {
					out, err := h.Invoke(ctx, ev)
					if err != nil {
						errs <- err
						return
					}
					if round == 1 && !strings.Contains(string(out), `"counted":0`) {
						errs <- fmt.Errorf("redelivery counted votes: %s", out)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	for p := range parts {
		ends[int32(p)] = offsets[p]
	}
	rep, err := d.Store.Audit(ctx, d.Config.Topics.Votes, ends)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Votes != 2000 {
		t.Fatalf("audit: votes %d ok %v", rep.Votes, rep.OK())
	}
}
