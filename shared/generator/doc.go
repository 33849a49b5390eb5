// Package generator makes realistic, fully offline election data: candidates
// and voters that are a pure function of a seed, so any machine regenerates
// the same election byte for byte and voters can be generated in parallel
// chunks without changing the result.
//
// The values are drawn from gofakeit's word lists (first and last names,
// streets, cities, the 50 states, job titles, slogans...), but gofakeit is
// not linked: its data would add megabytes to every binary. The lists the
// generator needs are copied into words.txt, embedded in the package, by the
// program in internal/mkwords (go generate ./shared/generator), and the
// generator composes the fields itself with a PCG generator seeded per seed,
// kind of record and index.
package generator
