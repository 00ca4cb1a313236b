package backup_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/postgres"
	"github.com/coffer-backup/coffer/repository"
)

// customerSchema is a 200k-row customer database: 100k customers, 80k
// orders, 20k payments, in primary-key order as a real shop fills it.
const customerSchema = `
CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, email text, phone text, street text, city text, created timestamptz NOT NULL);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers, placed timestamptz NOT NULL, product text, total numeric(10,2));
CREATE TABLE payments (id bigserial PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders, method text, card_last4 text, amount numeric(10,2));
INSERT INTO customers (name, email, phone, street, city, created)
  SELECT 'Customer ' || g || ' Müller-Ñúñez', 'customer' || g || '@example.com', '+1-555-' || lpad((g * 7919 % 10000)::text, 4, '0'),
         (g % 300) || ' Main St', (ARRAY['Lyon','Leipzig','Porto','Osaka','Quito'])[1 + g % 5], '2024-01-01'::timestamptz + g * interval '5 minutes'
  FROM generate_series(1, 100000) g;
INSERT INTO orders (customer_id, placed, product, total)
  SELECT 1 + (g * 31) % 100000, '2025-01-01'::timestamptz + g * interval '3 minutes', (ARRAY['kettle','mug','grinder','beans'])[1 + g % 4], (g % 9000) / 100.0
  FROM generate_series(1, 80000) g;
INSERT INTO payments (order_id, method, card_last4, amount)
  SELECT g * 4, CASE WHEN g % 3 = 0 THEN 'transfer' ELSE 'card' END, CASE WHEN g % 3 = 0 THEN NULL ELSE lpad((g % 10000)::text, 4, '0') END, (g % 9000) / 100.0
  FROM generate_series(1, 20000) g;`

func pgExec(t *testing.T, dsn, sql string) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("PostgreSQL at 127.0.0.1:5432 is needed: %v", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

func pgNight(t *testing.T, r *repository.Repo, dsn string) *backup.Summary {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := engine.NewConcat(ctx, s.Parts()...)
	defer c.Close()
	sum, err := backup.Run(ctx, r, c, backup.Options{Source: "shop", Engine: "postgres", Format: postgres.Format,
		Private: func() any { rep := s.Report(); rep.Parts = c.Parts(); return rep }})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestPostgresSecondNight measures what the second night stores after a
// realistic day, and after uniform updates that defeat chunk dedup.
func TestPostgresSecondNight(t *testing.T) {
	name := fmt.Sprintf("coffer_dedup_%d", time.Now().UnixNano()%1e9)
	admin := "postgres://postgres@127.0.0.1:5432/postgres"
	dsn := "postgres://postgres@127.0.0.1:5432/" + name
	pgExec(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() { pgExec(t, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	pgExec(t, dsn, customerSchema)

	r := localRepo(t)
	first := pgNight(t, r.Writer, dsn)
	// A realistic day: 1 % new orders, 0.01 % of customers updated, a few deletes.
	pgExec(t, dsn, `INSERT INTO orders (customer_id, placed, product, total)
		SELECT 1 + (g * 17) % 100000, now(), 'mug', 14.50 FROM generate_series(1, 800) g;
		UPDATE customers SET phone = '+1-555-0000' WHERE id % 10000 = 5;
		DELETE FROM payments WHERE id IN (7, 7007, 14007);`)
	second := pgNight(t, r.Writer, dsn)
	share := float64(second.BytesStored) / float64(first.BytesStored)
	t.Logf("night 1: %d MB dump, %d bytes stored; realistic day: %d bytes stored (%.1f%% of night 1), %d of %d chunks new",
		first.BytesRead>>20, first.BytesStored, second.BytesStored, 100*share, second.ChunksNew, second.ChunksTotal)
	if share >= 0.25 {
		t.Errorf("the second night stored %.1f%% of the first night's bytes, want < 25%%", 100*share)
	}
	for _, frac := range []string{"0.001", "0.01"} {
		pgExec(t, dsn, "UPDATE customers SET city = city || '' , phone = phone WHERE random() < "+frac)
		s := pgNight(t, r.Writer, dsn)
		t.Logf("after %s%% of customers updated uniformly: %d bytes stored (%.1f%% of night 1), %d of %d chunks new",
			map[string]string{"0.001": "0.1", "0.01": "1"}[frac], s.BytesStored, 100*float64(s.BytesStored)/float64(first.BytesStored), s.ChunksNew, s.ChunksTotal)
	}
}
