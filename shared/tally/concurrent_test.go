package tally_test

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

	"github.com/votingpipe/voting/shared/ballot"
	"github.com/votingpipe/voting/shared/broker"
	"github.com/votingpipe/voting/shared/broker/embedded"
	"github.com/votingpipe/voting/shared/config"
	"github.com/votingpipe/voting/shared/election"
	"github.com/votingpipe/voting/shared/generator"
	"github.com/votingpipe/voting/shared/internal/testkit"
	"github.com/votingpipe/voting/shared/kafkaevent"
	"github.com/votingpipe/voting/shared/stream"
	"github.com/votingpipe/voting/shared/tally"
)

// Four tally invocations at once, one per partition, each batch delivered
// twice: every vote is counted once and every tally view agrees.
func TestConcurrentTallyInvocations(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	emb, err := embedded.Start(embedded.Options{Topics: broker.Topics(config.Topics{Voters: "voters_topic", Votes: votesTopic,
		CandidateTotals: topics.CandidateTotals, TurnoutTotals: topics.TurnoutTotals, VotesDLQ: topics.VotesDLQ, VotersDLQ: "voters_dlq"}, 4)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	cl, err := broker.Connect(ctx, config.Kafka{Brokers: emb.Addrs(), ClientID: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	testkit.Register(t, st, "concurrent", 42, generator.Candidates(42, 3), 2000)
	cands, err := st.Candidates(ctx)
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
	var batch [parts][]*stream.Record
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
		batch[p] = append(batch[p], &stream.Record{Topic: votesTopic, Partition: int32(p), Offset: offsets[p],
			Timestamp: time.Now(), Key: []byte(v.VoterID), Value: val})
		offsets[p]++
		if len(batch[p]) == 100 {
			flush(p)
		}
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := tally.New(st, broker.Publisher{Client: cl}, config.Topics{CandidateTotals: topics.CandidateTotals,
		TurnoutTotals: topics.TurnoutTotals, VotesDLQ: topics.VotesDLQ}, config.Records{MaxBytes: 65536}, log)
	h := lambda.NewHandler(kafkaevent.Handler(p, log))
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
	rep, err := st.Audit(ctx, votesTopic, ends)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Votes != 2000 {
		t.Fatalf("audit: votes %d ok %v", rep.Votes, rep.OK())
	}
}
