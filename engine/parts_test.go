package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func src(name, body string, err error) PartSource {
	return PartSource{Name: name, Open: func(context.Context) (io.ReadCloser, error) {
		if err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader(body)), nil
	}}
}

func TestConcatSplit(t *testing.T) {
	c := NewConcat(context.Background(), src("globals.sql", "CREATE ROLE app;\n", nil), src("empty", "", nil), src("shop.pgdump", "PGDMP…data", nil))
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	parts := c.Parts()
	if string(all) != "CREATE ROLE app;\nPGDMP…data" || len(parts) != 3 || parts[2].Offset != 17 || parts[1].Size != 0 {
		t.Fatalf("stream %q, parts %+v", all, parts)
	}
	var got []string
	err = Split(bytes.NewReader(all), parts, func(p Part, r io.Reader) error {
		b, err := io.ReadAll(r)
		got = append(got, p.Name+"="+string(b))
		return err
	})
	if err != nil || strings.Join(got, "|") != "globals.sql=CREATE ROLE app;\n|empty=|shop.pgdump=PGDMP…data" {
		t.Fatalf("split: %v %q", err, got)
	}
	if err := Split(bytes.NewReader(all[:20]), parts, func(Part, io.Reader) error { return nil }); err == nil {
		t.Fatal("a short stream split without error")
	}
}

func TestConcatOpenFails(t *testing.T) {
	c := NewConcat(context.Background(), src("a", "x", nil), src("crm.pgdump", "", errors.New("database crm does not exist")))
	_, err := io.ReadAll(c)
	if err == nil || !strings.Contains(err.Error(), "crm.pgdump") {
		t.Fatalf("err = %v", err)
	}
}
