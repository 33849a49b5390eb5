// Package generator makes realistic, fully offline election data with
// gofakeit: candidates and voters that are a pure function of a seed, so any
// machine regenerates the same election byte for byte and voters can be
// generated in parallel chunks without changing the result.
package generator
