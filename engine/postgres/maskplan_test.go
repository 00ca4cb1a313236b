package postgres

import "testing"

// A TABLE DATA entry's copy statement is what pg_restore runs: a masked
// load accepts only COPY of the entry's own table FROM stdin, so that a
// backup host cannot route a table's rows past the rules (into another
// table, or out through a program).
func TestParseCopyHostile(t *testing.T) {
	e := func(stmt string) *tocEntry {
		return &tocEntry{desc: "TABLE DATA", namespace: "public", tag: "customers", copyStmt: stmt}
	}
	good := []string{
		"COPY public.customers (id, email) FROM stdin;\n",
		`COPY public.customers ("id", "e-mail") FROM stdin;`,
	}
	for _, s := range good {
		if cols, err := parseCopy(e(s)); err != nil || len(cols) != 2 {
			t.Errorf("%q: %v %v", s, cols, err)
		}
	}
	bad := []string{
		"COPY public.orders (id, email) FROM stdin;",          // another table
		"COPY public.customers (id, email) FROM PROGRAM 'x';", // not stdin
		"COPY public.customers (id, email) FROM stdin; DROP TABLE x;",
		"COPY public.customers (id, id) FROM stdin;", // a column twice
		"COPY public.customers (id, email) FROM stdin WITH (FORMAT binary);",
		"INSERT INTO public.customers VALUES (1);",
		"COPY customers (id) FROM stdin;", // unqualified: search_path decides
		"COPY public.customers (id, lower(email)) FROM stdin;",
	}
	for _, s := range bad {
		if _, err := parseCopy(e(s)); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
