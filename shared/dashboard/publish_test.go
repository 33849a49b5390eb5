package dashboard_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/votingpipe/voting/shared/dashboard"
)

func TestDirPublisherWritesEveryFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "dashboard")
	pub := dashboard.Dir{Dir: dir}
	p, _, _ := render(t, fixture(3, 4, 10, false), dashboard.Options{})
	if err := pub.Publish(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Files {
		got, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.Body) {
			t.Errorf("%s differs from the page", f.Name)
		}
		st, _ := os.Stat(filepath.Join(dir, f.Name))
		if st.Mode().Perm()&0o044 != 0o044 {
			t.Errorf("%s is %v: others cannot read it", f.Name, st.Mode())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(p.Files) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v: temporary files left behind?", names)
	}
	path, err := pub.IndexPath()
	if err != nil || !filepath.IsAbs(path) || !strings.HasSuffix(path, "/nested/dashboard/index.html") {
		t.Errorf("IndexPath %q, %v", path, err)
	}
}

func TestDirPublisherLeavesUnchangedStaticFilesAlone(t *testing.T) {
	dir := t.TempDir()
	pub := dashboard.Dir{Dir: dir}
	p1, _, _ := render(t, fixture(3, 4, 10, false), dashboard.Options{})
	if err := pub.Publish(context.Background(), p1); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, dashboard.EChartsFile)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, name := range []string{dashboard.EChartsFile, dashboard.IndexFile} {
		if err := os.Chtimes(filepath.Join(dir, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	p2, _, _ := render(t, fixture(3, 4, 11, false), dashboard.Options{})
	if err := pub.Publish(context.Background(), p2); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(bundle); !st.ModTime().Equal(old) {
		t.Error("the unchanged echarts bundle was rewritten")
	}
	if st, _ := os.Stat(filepath.Join(dir, dashboard.IndexFile)); st.ModTime().Equal(old) {
		t.Error("index.html was not rewritten")
	}
	// A damaged bundle is replaced.
	if err := os.WriteFile(bundle, []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(context.Background(), p2); err != nil {
		t.Fatal(err)
	}
	f, _ := p2.File(dashboard.EChartsFile)
	if got, _ := os.ReadFile(bundle); !bytes.Equal(got, f.Body) {
		t.Error("a damaged bundle was not replaced")
	}
}

// TestDirPublisherIsAtomic reads index.html over and over while two
// different pages are published in turn: every read is one page or the
// other, whole.
func TestDirPublisherIsAtomic(t *testing.T) {
	dir := t.TempDir()
	pub := dashboard.Dir{Dir: dir}
	pa, a, _ := render(t, fixture(3, 52, 1000, false), dashboard.Options{})
	pb, b, _ := render(t, fixture(4, 20, 10, false), dashboard.Options{})
	ctx := context.Background()
	if err := pub.Publish(ctx, pa); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads, torn atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				got, err := os.ReadFile(filepath.Join(dir, dashboard.IndexFile))
				if err != nil {
					torn.Add(1)
					continue
				}
				reads.Add(1)
				if s := string(got); s != a && s != b {
					torn.Add(1)
				}
			}
		}()
	}
	for i := range 60 {
		p := pa
		if i%2 == 0 {
			p = pb
		}
		if err := pub.Publish(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if torn.Load() > 0 {
		t.Errorf("%d of %d reads saw a missing or partial index.html", torn.Load(), reads.Load()+torn.Load())
	}
}

func TestDirPublisherNeedsADirectory(t *testing.T) {
	p, _, _ := render(t, fixture(1, 1, 1, false), dashboard.Options{})
	if err := (dashboard.Dir{}).Publish(context.Background(), p); err == nil {
		t.Error("publishing with no directory succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (dashboard.Dir{Dir: file}).Publish(context.Background(), p); err == nil {
		t.Error("publishing into a regular file succeeded")
	}
}
