package election

import (
	"encoding/binary"
	"hash/fnv"
	"math"
)

// Choose picks the candidate a voter votes for: a deterministic function of
// the election seed and the voter ID, drawn with the given relative weights
// (a weight <= 0 counts as 0; if all are 0, every candidate is equally
// likely). The same voter always gets the same answer, so a redelivered voter
// record produces a byte-identical vote.
//
// It returns the index into weights, or -1 when weights is empty.
func Choose(seed int64, voterID string, weights []float64) int {
	if len(weights) == 0 {
		return -1
	}
	h := fnv.New64a()
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], uint64(seed))
	h.Write(s[:])
	h.Write([]byte(voterID))
	// splitmix64 finaliser: FNV's low bits are poorly mixed for short inputs.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	u := float64(x>>11) / (1 << 53) // uniform in [0, 1)

	var total float64
	for _, w := range weights {
		total += math.Max(w, 0)
	}
	if total == 0 {
		return int(u * float64(len(weights)))
	}
	target := u * total
	var acc float64
	for i, w := range weights {
		acc += math.Max(w, 0)
		if target < acc {
			return i
		}
	}
	// Rounding: fall back to the last candidate with a positive weight.
	for i := len(weights) - 1; i >= 0; i-- {
		if weights[i] > 0 {
			return i
		}
	}
	return len(weights) - 1
}
