package dashboard_test

import (
	"context"
	"testing"

	"github.com/votingpipe/voting/shared/dashboard"
)

func TestScratch(t *testing.T) {
	p, err := dashboard.Render(fixture(5, 52, 1000, true), dashboard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := (dashboard.DirPublisher{Dir: "/tmp/dash"}).Publish(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Files {
		t.Log(f.Name, len(f.Body))
	}
}
