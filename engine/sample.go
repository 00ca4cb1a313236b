package engine

import "math/rand/v2"

// ColumnSample is one column of a dumped table: its name, its declared
// type and a sample of its non-NULL values, for classification.
type ColumnSample struct {
	Table  string   // schema.table where the engine has schemas
	Column string   // its name
	Type   string   // as the dump declares it, when known
	Values []string // up to the sample size, spread over the table
	Rows   int64    // the table's rows
}

// Sample adds v to c's reservoir of up to limit values, so that the
// values kept are spread uniformly over the column's (rnd with a fixed
// seed gives the same sample of the same rows). It counts the values in
// Rows; the caller sets Rows to the table's rows at the end.
func (c *ColumnSample) Sample(v string, limit int, rnd *rand.Rand) {
	c.Rows++
	if len(c.Values) < limit {
		c.Values = append(c.Values, v)
		return
	}
	if j := rnd.Int64N(c.Rows); j < int64(limit) {
		c.Values[j] = v
	}
}
