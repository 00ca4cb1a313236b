package engine

// ColumnSample is one column of a dumped table: its name, its declared
// type and a sample of its non-NULL values, for classification.
type ColumnSample struct {
	Table  string   // schema.table where the engine has schemas
	Column string   // its name
	Type   string   // as the dump declares it, when known
	Values []string // up to the sample size, spread over the table
	Rows   int64    // the table's rows
}
