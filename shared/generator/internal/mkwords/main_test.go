package main

import (
	"bytes"
	"os"
	"testing"
)

// TestWordsUpToDate checks that ../../words.txt is what this program writes,
// and that writing is deterministic.
func TestWordsUpToDate(t *testing.T) {
	a, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two generations differ")
	}
	old, err := os.ReadFile("../../words.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, a) {
		t.Errorf("words.txt is out of date (%d bytes, want %d): run go generate ./shared/generator", len(old), len(a))
	}
}
