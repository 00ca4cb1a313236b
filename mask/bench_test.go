package mask

import (
	"fmt"
	"testing"
)

func BenchmarkMask(b *testing.B) {
	m := NewMasker(testKey(9))
	for _, c := range []struct {
		r Rule
		v string
	}{{Rule{Action: Fake, Kind: Email}, "ada.abbott.12345@mail.example.com"}, {Rule{Action: Fake, Kind: Phone}, "+1-555-1234-5678"},
		{Rule{Action: Fake, Kind: Card}, "5500 0000 1234 0004"}, {Rule{Action: Fake, Kind: Text}, "Asked on the phone to send invoices to x@y.com instead; VIP since 2021."},
		{Rule{Action: Fake, Kind: FirstName}, "Ada"}, {Rule{Action: Fake, Kind: DateOfBirth}, "1980-01-02"}} {
		col := m.Column("t.c", c.r)
		b.Run(string(c.r.Kind), func(b *testing.B) {
			for i := range b.N {
				col.Mask(fmt.Sprint(c.v, i))
			}
		})
	}
}

func BenchmarkHMAC(b *testing.B) {
	p := testKey(1).derive("x")
	in := []byte("ada.abbott.12345@mail.example.com")
	for range b.N {
		p.sum(in)
	}
}
