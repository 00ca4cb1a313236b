// Package synth generates synthetic, deterministic customer data for tests
// and benchmarks: text that looks and compresses like a database dump, with
// no real person's data in it.
package synth

import (
	"fmt"
	"io"
	"math/rand/v2"
)

var (
	first  = []string{"Ada", "Björn", "Chen", "Dara", "Émile", "Fatima", "Goran", "Hana", "Ines", "Jonas", "Kofi", "Lena", "Mateo", "Noor", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Vera", "Wen", "Yusuf", "Zoë"}
	last   = []string{"Abbott", "Berger", "Castillo", "Dubois", "Eriksen", "Fischer", "García", "Haddad", "Ivanova", "Jensen", "Kowalski", "López", "Müller", "Nakamura", "Okafor", "Petrov", "Quintero", "Rossi", "Schmidt", "Tanaka", "Ueda", "Vargas", "Weber", "Xu", "Zielinski"}
	street = []string{"Main St", "Harbour Rd", "Linden Allee", "Rue des Fleurs", "Calle Mayor", "Elm Ave", "Kings Way", "Via Roma", "Mill Lane", "Station Rd"}
	city   = []string{"Springfield", "Lyon", "Leipzig", "Valencia", "Porto", "Turku", "Gdańsk", "Osaka", "Lagos", "Quito"}
)

// Row formats customer n of the stream with seed: a tab-separated line in
// the style of a PostgreSQL COPY block.
func Row(seed uint64, n int64) string {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	f, l := first[r.IntN(len(first))], last[r.IntN(len(last))]
	return fmt.Sprintf("%d\t%s\t%s\t%s.%s%d@example.com\t+1-555-%04d-%04d\t%d %s\t%s\t%d.%02d\t2026-%02d-%02d %02d:%02d:%02d+00\n",
		n, f, l, f, l, n, r.IntN(10000), r.IntN(10000), 1+r.IntN(400), street[r.IntN(len(street))],
		city[r.IntN(len(city))], r.IntN(100000), r.IntN(100), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60))
}

// Dump returns a reader of exactly size bytes of customer rows.
func Dump(seed uint64, size int64) io.Reader {
	return &dump{seed: seed, left: size}
}

type dump struct {
	seed uint64
	n    int64
	left int64
	buf  []byte
}

func (d *dump) Read(p []byte) (int, error) {
	if d.left <= 0 {
		return 0, io.EOF
	}
	for len(d.buf) < len(p) && int64(len(d.buf)) < d.left {
		d.buf = append(d.buf, Row(d.seed, d.n)...)
		d.n++
	}
	n := copy(p, d.buf)
	if int64(n) > d.left {
		n = int(d.left)
	}
	d.buf = d.buf[:copy(d.buf, d.buf[n:])]
	d.left -= int64(n)
	return n, nil
}

// Bytes returns size bytes of customer rows.
func Bytes(seed uint64, size int64) []byte {
	b := make([]byte, size)
	io.ReadFull(Dump(seed, size), b)
	return b
}

// Edit overwrites count scattered regions of b, together about fraction of
// its bytes, with other rows (as if rows were updated in place), and
// returns the number of bytes changed.
func Edit(b []byte, seed uint64, count int, fraction float64) int {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	each := int(float64(len(b)) * fraction / float64(count))
	changed := 0
	for i := 0; i < count; i++ {
		slot := len(b) / count
		off := i*slot + r.IntN(max(1, slot-each))
		repl := Bytes(seed+uint64(i)+1, int64(each))
		for j := range repl {
			if b[off+j] != repl[j] {
				changed++
			}
			b[off+j] = repl[j]
		}
	}
	return changed
}
