package repository

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// Subset selects the packs that `check --read-data` reads: all (the zero
// Subset), a random share (Fraction), or slice N of T.
//
// Slices follow restic's n/t form: the indexed packs are sorted by id, and
// the pack at position i (from 0) belongs to slice i mod T + 1. Runs of
// 1/T, 2/T … T/T over the same packs read each pack exactly once; packs
// added between the runs shift positions, so a rotation started after a
// backup covers every pack of that moment, not of the first run.
type Subset struct {
	Fraction float64 // in (0, 1): at least one pack, ceil(Fraction × packs) in all
	N, T     int     // slice N of T, 1 <= N <= T
	text     string
}

// ParseSubset reads a subset as given to --subset: "10%", "0.1" or "2/5".
func ParseSubset(s string) (Subset, error) {
	if s == "" {
		return Subset{}, nil
	}
	if a, b, ok := strings.Cut(s, "/"); ok {
		n, err1 := strconv.Atoi(a)
		t, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || t < 1 || n < 1 || n > t {
			return Subset{}, fmt.Errorf("--subset %q: give slice n/t with whole numbers 1 <= n <= t, such as 1/5 (run 1/5 to 5/5 to read every pack once)", s)
		}
		if t == 1 {
			return Subset{text: s}, nil
		}
		return Subset{N: n, T: t, text: s}, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err == nil && strings.HasSuffix(s, "%") {
		v /= 100
	}
	if err != nil || math.IsNaN(v) || v <= 0 || v > 1 {
		return Subset{}, fmt.Errorf("--subset %q: give a percentage such as 10%% (more than 0, at most 100), a fraction such as 0.1, or a slice n/t such as 1/5", s)
	}
	if v == 1 {
		return Subset{text: s}, nil
	}
	return Subset{Fraction: v, text: s}, nil
}

// IsZero reports whether s selects every pack.
func (s Subset) IsZero() bool { return s.Fraction == 0 && s.T == 0 }

// String returns the subset as it was given ("" for all packs).
func (s Subset) String() string {
	if s.text != "" || s.IsZero() {
		return s.text
	}
	if s.T > 0 {
		return fmt.Sprintf("%d/%d", s.N, s.T)
	}
	return strconv.FormatFloat(s.Fraction*100, 'g', -1, 64) + "%"
}

// choose returns the packs s selects, sorted by id.
func (s Subset) choose(packs []PackInfo) []PackInfo {
	sort.Slice(packs, func(i, j int) bool { return bytes.Compare(packs[i].ID[:], packs[j].ID[:]) < 0 })
	switch {
	case s.T > 0:
		var out []PackInfo
		for i := s.N - 1; i < len(packs); i += s.T {
			out = append(out, packs[i])
		}
		return out
	case s.Fraction > 0 && len(packs) > 0:
		k := max(1, int(math.Ceil(s.Fraction*float64(len(packs)))))
		pick := rand.Perm(len(packs))[:k]
		sort.Ints(pick)
		out := make([]PackInfo, k)
		for i, j := range pick {
			out[i] = packs[j]
		}
		return out
	}
	return packs
}
