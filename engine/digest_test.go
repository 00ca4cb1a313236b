package engine

import (
	"strings"
	"testing"
)

func TestDigesterOrderAndDuplicates(t *testing.T) {
	rows := []string{"1\tAda", "2\tBjörn", "3\t\\N"}
	a, b, c := NewDigester(), NewDigester(), NewDigester()
	for i := range rows {
		a.Add("customers", []byte(rows[i]))
		b.Add("customers", []byte(rows[len(rows)-1-i]))
	}
	c.Add("customers", []byte(rows[0]))
	c.Add("customers", []byte(rows[0]))
	c.Add("customers", []byte(rows[1]))
	c.Table("empty")
	ra, rb, rc := a.Result(), b.Result(), c.Result()
	if ra[0] != rb[0] {
		t.Fatalf("row order changed the digest: %v vs %v", ra, rb)
	}
	if ra[0].Rows != 3 || rc[0].Rows != 3 || ra[0].Digest == rc[0].Digest {
		t.Fatalf("a duplicated row went unnoticed: %v vs %v", ra, rc)
	}
	if len(rc) != 2 || rc[1].Table != "empty" || rc[1].Rows != 0 {
		t.Fatalf("an empty table is missing: %v", rc)
	}
}

func TestCompare(t *testing.T) {
	want := []TableDigest{{"a", 1, "x"}, {"b", 2, "y"}, {"c", 3, "z"}}
	got := []TableDigest{{"a", 1, "x"}, {"b", 2, "q"}, {"d", 1, "w"}}
	res := Compare(want, got)
	reasons := map[string]string{}
	for _, r := range res {
		reasons[r.Table] = r.Reason
	}
	if AllMatch(res) || reasons["a"] != "" || reasons["b"] != "same row count, different contents" ||
		reasons["c"] != "missing from the restored database" || reasons["d"] != "not in the backup" {
		t.Fatalf("compare: %+v", res)
	}
}

// BenchmarkDigestRows digests rows shaped like pgbench_accounts' COPY
// text (about 97 bytes): what a backup and a verification pay per row.
func BenchmarkDigestRows(b *testing.B) {
	row := []byte("4711\t1\t0\t" + strings.Repeat(" ", 84))
	rows := NewDigester().Table("pgbench_accounts")
	b.SetBytes(int64(len(row)))
	b.ReportAllocs()
	for b.Loop() {
		rows.Add(row)
	}
}
