package postgres

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/mask"
)

// maxMaskWorkers bounds the goroutines that mask one table's columns.
const maxMaskWorkers = 4

// maskOrder lists a table's masked columns, costliest first, the order in
// which the masking goroutines take them from a batch, and how many
// goroutines share them: one per core, no more than there are columns.
func maskOrder(rules []mask.Rule) ([]int, int) {
	var order []int
	for i, r := range rules {
		if r.Masks() {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return maskCost(rules[b]) - maskCost(rules[a]) })
	return order, max(min(runtime.GOMAXPROCS(0), maxMaskWorkers, len(order)), 1)
}

// maskCost is about what masking a value under r costs, in HMAC-SHA256
// computations (measured with BenchmarkMask in package mask), before the
// memo of repeated values.
func maskCost(r mask.Rule) int {
	switch {
	case r.Action == mask.Keep:
		return 0
	case r.Action == mask.Null, r.Action == mask.Redact:
		return 1
	case r.Action == mask.KeepDomain, r.Kind == mask.Email:
		return 4
	case r.Kind == mask.Phone, r.Kind == mask.Card, r.Kind == mask.IBAN, r.Kind == mask.Text:
		return 3
	}
	return 2
}

// maskWork is one batch of a table's rows, split into fields, as the
// masking goroutines share it: each takes the next column not taken and
// masks it in every row, in order, so that a column is masked by one
// goroutine at a time, its values in the order of the rows (on which a
// unique column's pseudonyms depend).
type maskWork struct {
	t      *maskTable
	fields [][]byte // row by row, len(t.cols) a row
	out    []string // the masked fields, where the column masks
	null   []bool   // the masked field is NULL
	empty  int      // rows of a table without columns
	next   atomic.Int32
	seen   []mask.Originals
}

// maskBatch masks a batch of rows, each ended by a newline: the table's
// goroutines mask their columns at once, then the rows are put together.
func (m *maskedArchive) maskBatch(t *maskTable, batch []byte) ([]byte, error) {
	w := &maskWork{t: t, seen: make([]mask.Originals, t.workers)}
	if err := m.split(w, batch); err != nil {
		return nil, err
	}
	w.out, w.null = make([]string, len(w.fields)), make([]bool, len(w.fields))
	var g errgroup.Group
	for k := 1; k < t.workers; k++ {
		g.Go(func() error { return m.maskColumns(w, k) })
	}
	err := m.maskColumns(w, 0)
	if gerr := g.Wait(); err == nil {
		err = gerr
	}
	if err != nil {
		return nil, err
	}
	for k := range w.seen {
		m.seen.Merge(&w.seen[k])
	}
	return w.join(len(batch)), nil
}

// split cuts a batch into its rows' fields, checking that each row has
// one field per column.
func (m *maskedArchive) split(w *maskWork, batch []byte) error {
	t := w.t
	w.fields = make([][]byte, 0, bytes.Count(batch, []byte{'\n'})*len(t.cols))
	for row := range bytes.SplitSeq(batch[:len(batch)-1], []byte{'\n'}) {
		n := 0
		if len(t.cols) == 0 && len(row) == 0 {
			w.empty++
			continue
		}
		for f := range bytes.SplitSeq(row, []byte{'\t'}) {
			if n >= len(t.cols) {
				return m.a.errorf("a row of table %s has more fields than its %d columns: the archive is corrupt", display(t.name), len(t.cols))
			}
			w.fields = append(w.fields, f)
			n++
		}
		if n != len(t.cols) {
			return m.a.errorf("a row of table %s has %d fields, not its %d columns: the archive is corrupt", display(t.name), n, len(t.cols))
		}
	}
	return nil
}

// maskColumns masks, in every row, the columns goroutine k takes.
func (m *maskedArchive) maskColumns(w *maskWork, k int) error {
	t := w.t
	n := len(t.cols)
	for {
		next := int(w.next.Add(1)) - 1
		if next >= len(t.order) {
			return nil
		}
		i := t.order[next]
		c := t.maskers[i]
		for j := i; j < len(w.fields); j += n {
			if string(w.fields[j]) == copyNull {
				continue
			}
			v := decodeField(w.fields[j])
			if t.collect[i] {
				w.seen[k].Add(v)
			}
			mv, null, err := c.Mask(v)
			if err != nil {
				return fmt.Errorf("masked load of database %q: %w", m.a.label, err)
			}
			w.out[j], w.null[j] = mv, null
		}
	}
}

// join puts the rows together: kept fields as they were, masked ones
// encoded, each row ended by a newline.
func (w *maskWork) join(size int) []byte {
	t := w.t
	out := make([]byte, 0, size+size/4)
	if len(t.cols) == 0 {
		return append(out, bytes.Repeat([]byte{'\n'}, w.empty)...)
	}
	for j, f := range w.fields {
		i := j % len(t.cols)
		if i > 0 {
			out = append(out, '\t')
		}
		switch {
		case t.maskers[i] == nil || string(f) == copyNull:
			out = append(out, f...)
		case w.null[j]:
			out = append(out, copyNull...)
		default:
			out = appendField(out, w.out[j])
		}
		if i == len(t.cols)-1 {
			out = append(out, '\n')
		}
	}
	return out
}
