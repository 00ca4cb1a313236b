package main_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	coffer "github.com/coffer-backup/coffer"
)

// The shop is a generated customer database with the column names real
// schemas use: customers with names, e-mails, phones, addresses, card
// numbers, dates of birth and free-text notes that mention e-mails;
// orders and payments referencing them by foreign key. All synthetic.

const shopSchema = `
CREATE TABLE customers (
  id bigint PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL,
  email text NOT NULL UNIQUE, phone text, street_address text, city text, country text,
  card_number text, date_of_birth date, notes text, loyalty_tier text NOT NULL,
  created_at timestamptz NOT NULL);
CREATE TABLE orders (
  id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id),
  placed_at timestamptz NOT NULL, total_cents integer NOT NULL, status text NOT NULL,
  shipping_address text);
CREATE TABLE payments (
  id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders(id),
  method text NOT NULL, card_number text, iban text, amount_cents integer NOT NULL,
  paid_at timestamptz NOT NULL);
CREATE INDEX orders_customer ON orders(customer_id);`

// shopRules are the masking rules for the shop, as an operator keeps them.
const shopRules = `version: 1
default: fail
canaries:
  table: public.customers
  domain: canary.example.net
  phone_prefix: "+1-555-0199"
tables:
  public.customers:
    id: keep
    first_name: fake first_name
    last_name: fake last_name
    email: fake email
    phone: fake phone
    street_address: fake address
    city: keep
    country: keep
    card_number: fake card
    date_of_birth: fake date_of_birth
    notes: fake text
    loyalty_tier: keep
    created_at: keep
  public.orders:
    id: keep
    customer_id: keep
    placed_at: keep
    total_cents: keep
    status: keep
    shipping_address: fake address
  public.payments:
    id: keep
    order_id: keep
    method: keep
    card_number: fake card
    iban: fake iban
    amount_cents: keep
    paid_at: keep
`

type shopLists struct{ first, last, streets, cities []string }

func loadShopLists(t *testing.T) shopLists {
	t.Helper()
	read := func(name string) []string {
		b, err := coffer.DemoData.ReadFile("testdata/demo/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	return shopLists{read("first_names.txt"), read("last_names.txt"), read("streets.txt"), read("cities.txt")}
}

// shopCard is a Luhn-valid 16-digit card number.
func shopCard(r *rand.Rand) string {
	d := []byte("5")
	for len(d) < 15 {
		d = append(d, '0'+byte(r.IntN(10)))
	}
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if (len(d)-1-i)%2 == 0 {
			if v *= 2; v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	d = append(d, '0'+byte((10-sum%10)%10))
	return fmt.Sprintf("%s %s %s %s", d[0:4], d[4:8], d[8:12], d[12:16])
}

// shopIBAN is a German IBAN with valid check digits.
func shopIBAN(r *rand.Rand) string {
	bban := make([]byte, 18)
	for i := range bban {
		bban[i] = '0' + byte(r.IntN(10))
	}
	rem := 0
	for _, c := range string(bban) + "131400" { // D=13 E=14 00
		rem = (rem*10 + int(c-'0')) % 97
	}
	return fmt.Sprintf("DE%02d%s", 98-rem, bban)
}

func shopEmail(l shopLists, id int64) string {
	first, last := l.first[id%int64(len(l.first))], l.last[(id/7)%int64(len(l.last))]
	return strings.ToLower(first+"."+last) + fmt.Sprintf(".%d@mail.example.com", id)
}

// genShop fills database db (which exists) with n customers and about two
// orders each, from seed.
func genShop(t *testing.T, db string, n int64, seed uint64) {
	t.Helper()
	ctx := context.Background()
	c := postgres(t, db)
	if _, err := c.Exec(ctx, shopSchema); err != nil {
		t.Fatal(err)
	}
	for _, tb := range shopRows(t, n, seed) {
		if _, err := c.CopyFrom(ctx, pgx.Identifier{tb.name}, tb.cols, pgx.CopyFromRows(tb.rows)); err != nil {
			t.Fatalf("fill %s: %v", tb.name, err)
		}
	}
}

// shopTable is a table of the shop and its generated rows.
type shopTable struct {
	name string
	cols []string
	rows [][]any
}

// shopRows generates the shop's rows: n customers and about two orders
// each, from seed.
func shopRows(t *testing.T, n int64, seed uint64) []shopTable {
	t.Helper()
	l := loadShopLists(t)
	r := rand.New(rand.NewPCG(seed, 2))
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var customers, orders, payments [][]any
	var oid int64
	for id := int64(1); id <= n; id++ {
		first, last := l.first[id%int64(len(l.first))], l.last[(id/7)%int64(len(l.last))]
		city, country, _ := strings.Cut(l.cities[r.IntN(len(l.cities))], ",")
		var notes any
		if id%5 == 0 {
			notes = fmt.Sprintf("Asked on the phone to send invoices to %s instead; VIP since 2021.", shopEmail(l, id/2+1))
		}
		card := shopCard(r)
		customers = append(customers, []any{id, first, last, shopEmail(l, id),
			fmt.Sprintf("+1-555-%04d-%04d", r.IntN(10000), id%10000),
			fmt.Sprintf("%d %s", 1+r.IntN(300), l.streets[r.IntN(len(l.streets))]), city, country, card,
			time.Date(1950+r.IntN(55), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC),
			notes, []string{"bronze", "silver", "gold"}[r.IntN(3)], base.Add(time.Duration(r.Int64N(int64(300 * 24 * time.Hour))))})
		for range r.IntN(4) {
			oid++
			orders = append(orders, []any{oid, id, base.Add(time.Duration(r.Int64N(int64(300 * 24 * time.Hour)))), 100 + r.IntN(90000),
				[]string{"new", "shipped", "delivered"}[r.IntN(3)], fmt.Sprintf("%d %s", 1+r.IntN(300), l.streets[r.IntN(len(l.streets))])})
			if r.IntN(2) == 0 {
				payments = append(payments, []any{oid, oid, "card", card, nil, 100 + r.IntN(90000), base})
			} else {
				payments = append(payments, []any{oid, oid, "sepa", nil, shopIBAN(r), 100 + r.IntN(90000), base})
			}
		}
	}
	return []shopTable{
		{"customers", []string{"id", "first_name", "last_name", "email", "phone", "street_address", "city", "country", "card_number", "date_of_birth", "notes", "loyalty_tier", "created_at"}, customers},
		{"orders", []string{"id", "customer_id", "placed_at", "total_cents", "status", "shipping_address"}, orders},
		{"payments", []string{"id", "order_id", "method", "card_number", "iban", "amount_cents", "paid_at"}, payments},
	}
}

// createDB creates a fresh database named for the test, dropped at the end
// with every database whose name starts with it.
func createDB(t *testing.T, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano()%1e9)
	admin := postgres(t, "postgres")
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropLike(t, name) })
	return name
}
