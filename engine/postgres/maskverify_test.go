package postgres

import (
	"fmt"
	"testing"

	"github.com/coffer-backup/coffer/mask"
)

// The set of originals (mask.Originals, shared by every engine) finds
// every value added, whole or as an escaped COPY field, and no other, at
// every size its index takes.
func TestOriginals(t *testing.T) {
	for _, n := range []int{0, 1, 3, 4, 5, 17, 1000, 100_000} {
		o := &mask.Originals{}
		for i := range n {
			o.Add(fmt.Sprintf("orig-%d@example.com", i))
			o.Add(fmt.Sprintf("orig-%d@example.com", i/2)) // duplicates
		}
		o.Add("tab\there")
		o.Add("abc") // too short to be looked for
		o.Seal()
		for i := range n {
			v := fmt.Sprintf("orig-%d@example.com", i)
			if !o.Has(v) || !hasField(o, []byte(v)) {
				t.Fatalf("%d originals: %q not found", n, v)
			}
		}
		for i := n; i < n+2000; i++ {
			if v := fmt.Sprintf("orig-%d@example.com", i); o.Has(v) || hasField(o, []byte(v)) {
				t.Fatalf("%d originals: %q found", n, v)
			}
		}
		if !hasField(o, []byte(`tab\there`)) || !hasField(o, []byte(`tab\011here`)) || hasField(o, []byte(`tab\\there`)) {
			t.Fatalf("%d originals: escaped fields", n)
		}
		if o.Has("abc") || o.HasIn("nothing here") || n > 0 && !o.HasIn("mail orig-0@example.com, now") {
			t.Fatalf("%d originals: short values or words", n)
		}
	}
}
