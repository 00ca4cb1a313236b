package postgres

import (
	"fmt"
	"testing"
)

// The set of originals finds every value added, whole or as an escaped
// COPY field, and no other, at every size its index takes.
func TestOriginals(t *testing.T) {
	for _, n := range []int{0, 1, 3, 4, 5, 17, 1000, 100_000} {
		o := &originals{}
		for i := range n {
			o.add(fmt.Sprintf("orig-%d@example.com", i))
			o.add(fmt.Sprintf("orig-%d@example.com", i/2)) // duplicates
		}
		o.add("tab\there")
		o.add("abc") // too short to be looked for
		o.seal()
		for i := range n {
			v := fmt.Sprintf("orig-%d@example.com", i)
			if !o.has(v) || !o.hasField([]byte(v)) {
				t.Fatalf("%d originals: %q not found", n, v)
			}
		}
		for i := n; i < n+2000; i++ {
			if v := fmt.Sprintf("orig-%d@example.com", i); o.has(v) || o.hasField([]byte(v)) {
				t.Fatalf("%d originals: %q found", n, v)
			}
		}
		if !o.hasField([]byte(`tab\there`)) || !o.hasField([]byte(`tab\011here`)) || o.hasField([]byte(`tab\\there`)) {
			t.Fatalf("%d originals: escaped fields", n)
		}
		if o.has("abc") || o.hasIn("nothing here") || n > 0 && !o.hasIn("mail orig-0@example.com, now") {
			t.Fatalf("%d originals: short values or words", n)
		}
	}
}
