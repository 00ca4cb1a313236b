package demo

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver

	coffer "github.com/coffer-backup/coffer"
)

// lists are the embedded word lists.
type lists struct {
	first, last, streets, cities, products []string
}

func loadLists() (*lists, error) {
	read := func(name string) ([]string, error) {
		b, err := coffer.DemoData.ReadFile("testdata/demo/" + name)
		if err != nil {
			return nil, err
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n"), nil
	}
	l := &lists{}
	for _, f := range []struct {
		name string
		dst  *[]string
	}{{"first_names.txt", &l.first}, {"last_names.txt", &l.last}, {"streets.txt", &l.streets}, {"cities.txt", &l.cities}, {"products.txt", &l.products}} {
		var err error
		if *f.dst, err = read(f.name); err != nil {
			return nil, err
		}
	}
	return l, nil
}

const schema = `
CREATE TABLE customers (
  id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE, phone TEXT, street TEXT, city TEXT, country TEXT,
  created_at TEXT NOT NULL, notes TEXT);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
  placed_at TEXT NOT NULL, product TEXT NOT NULL, quantity INTEGER NOT NULL,
  total_cents INTEGER NOT NULL, status TEXT NOT NULL);
CREATE TABLE payments (
  id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
  method TEXT NOT NULL, card_last4 TEXT, amount_cents INTEGER NOT NULL, paid_at TEXT NOT NULL);
CREATE INDEX orders_customer ON orders(customer_id);
CREATE INDEX payments_order ON payments(order_id);`

// Counts are the rows of each table.
type Counts struct{ Customers, Orders, Payments int }

// Generate creates the customer database at path with n customers and
// about three orders each, most of them paid.
func Generate(ctx context.Context, path string, n int, seed uint64) (Counts, error) {
	l, err := loadLists()
	if err != nil {
		return Counts{}, err
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return Counts{}, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return Counts{}, fmt.Errorf("create demo schema in %s: %w", path, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return Counts{}, err
	}
	defer tx.Rollback()
	g := &gen{l: l, r: rand.New(rand.NewPCG(seed, 1)), tx: tx}
	for id := 1; id <= n; id++ {
		if err := g.customer(ctx, id); err != nil {
			return Counts{}, err
		}
		for range g.r.IntN(6) {
			if err := g.order(ctx, id); err != nil {
				return Counts{}, err
			}
		}
	}
	return g.counts(n), tx.Commit()
}

type gen struct {
	l                *lists
	r                *rand.Rand
	tx               *sql.Tx
	orders, payments int
}

func (g *gen) counts(customers int) Counts {
	return Counts{Customers: customers, Orders: g.orders, Payments: g.payments}
}

func (g *gen) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *gen) customer(ctx context.Context, id int) error {
	first, last := g.pick(g.l.first), g.pick(g.l.last)
	city, country, _ := strings.Cut(g.pick(g.l.cities), ",")
	var notes any
	if g.r.IntN(10) == 0 {
		notes = "prefers delivery after 17:00 — ring twice"
	}
	_, err := g.tx.ExecContext(ctx, `INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?,?)`, id, first, last,
		fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(first), strings.ToLower(last), id),
		fmt.Sprintf("+1-555-%04d-%04d", g.r.IntN(10000), g.r.IntN(10000)),
		fmt.Sprintf("%d %s", 1+g.r.IntN(300), g.pick(g.l.streets)), city, country,
		g.when(2023).Format(time.RFC3339), notes)
	return err
}

func (g *gen) when(year int) time.Time {
	return time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(g.r.Int64N(int64(365 * 24 * time.Hour))))
}

func (g *gen) order(ctx context.Context, customer int) error {
	g.orders++
	name, price, _ := strings.Cut(g.pick(g.l.products), ",")
	cents, _ := strconv.Atoi(price)
	qty := 1 + g.r.IntN(3)
	status := []string{"paid", "paid", "paid", "shipped", "open"}[g.r.IntN(5)]
	placed := g.when(2025)
	if _, err := g.tx.ExecContext(ctx, `INSERT INTO orders VALUES (?,?,?,?,?,?,?)`, g.orders, customer,
		placed.Format(time.RFC3339), name, qty, qty*cents, status); err != nil {
		return err
	}
	if status == "open" {
		return nil
	}
	g.payments++
	method, last4 := "card", any(fmt.Sprintf("%04d", g.r.IntN(10000)))
	if g.r.IntN(4) == 0 {
		method, last4 = "bank transfer", nil
	}
	_, err := g.tx.ExecContext(ctx, `INSERT INTO payments VALUES (?,?,?,?,?,?)`, g.payments, g.orders, method, last4,
		qty*cents, placed.Add(time.Duration(g.r.IntN(3600))*time.Second).Format(time.RFC3339))
	return err
}

// Change simulates a day: fraction of the customers change their phone
// number, and as many new orders arrive. It returns the rows changed.
func Change(ctx context.Context, path string, fraction float64, seed uint64) (int, error) {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM customers`).Scan(&n); err != nil {
		return 0, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	l, err := loadLists()
	if err != nil {
		return 0, err
	}
	g := &gen{l: l, r: rand.New(rand.NewPCG(seed, 2)), tx: tx}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM orders`).Scan(&g.orders); err != nil {
		return 0, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM payments`).Scan(&g.payments); err != nil {
		return 0, err
	}
	k := max(1, int(float64(n)*fraction))
	for range k {
		if _, err := tx.ExecContext(ctx, `UPDATE customers SET phone = ? WHERE id = ?`,
			fmt.Sprintf("+1-555-%04d-%04d", g.r.IntN(10000), g.r.IntN(10000)), 1+g.r.IntN(n)); err != nil {
			return 0, err
		}
		if err := g.order(ctx, 1+g.r.IntN(n)); err != nil {
			return 0, err
		}
	}
	return 2 * k, tx.Commit()
}
