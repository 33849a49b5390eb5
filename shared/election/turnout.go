package election

import (
	"encoding/binary"
	"hash/fnv"
	"math"
)

// Votes reports whether a voter of the roll votes in the simulation, in an
// election where turnout is the share of the roll that votes (in [0, 1]; 1:
// every voter votes, as in the original demo; 0: none, the election is of
// real ballots only). It is a deterministic function of
// the seed and the voter, so a redelivered voter record decides the same
// way, and the register stage can count in advance the votes to expect.
//
// The voter's propensity varies around turnout, by state (a seeded lean
// for each state), by age (older voters vote more) and by gender (a seeded
// lean for each): p = turnout + d·turnout·(1-turnout), with d in [-1, 1]
// averaging 0 over the generator's roll, so p stays in [turnout²,
// turnout·(2-turnout)] and the roll's turnout comes out close to turnout.
// The voter then votes when a seeded draw for their ID falls below p.
func Votes(seed int64, turnout float64, v *Voter) bool {
	if turnout >= 1 {
		return true
	}
	if turnout <= 0 {
		return false
	}
	return draw(seed, "turnout", v.VoterID) < Propensity(seed, turnout, v.Address.State, v.Gender, v.RegisteredAge)
}

// Propensity is the chance that a voter of this state, gender and age
// votes (see Votes).
func Propensity(seed int64, turnout float64, state, gender string, age int) float64 {
	if turnout >= 1 {
		return 1
	}
	d := (draw(seed, "state", state) - 0.5) + // ±0.5
		0.3*float64(age-59)/41 + // ±0.3 over the generator's ages 18-100
		0.2*(draw(seed, "gender", gender)-0.5) // ±0.1
	d = max(-1, min(1, d))
	return turnout + d*turnout*(1-turnout)
}

// draw is a uniform number in [0, 1), a deterministic function of the seed,
// the purpose and the key (FNV-1a finished with splitmix64, as Choose).
func draw(seed int64, purpose, key string) float64 {
	h := fnv.New64a()
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], uint64(seed))
	h.Write(s[:])
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(key))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// ValidTurnout reports whether t is a turnout an election can have: 0 (no
// simulated votes: only real ballots, cast over HTTP) to 1 (everyone).
func ValidTurnout(t float64) bool { return t >= 0 && t <= 1 && !math.IsNaN(t) }
