package repository

import "testing"

func TestSegmentArithmetic(t *testing.T) {
	for _, tc := range []struct {
		name       string
		size       int64
		seg, next  string
		lsn        string
		segOfLSN   string
		wantErrNew bool
	}{
		{name: "16 MiB", size: 16 << 20, seg: "000000010000000000000002", next: "000000010000000000000003", lsn: "0/3000060", segOfLSN: "000000010000000000000003"},
		{name: "16 MiB, last of its 4 GiB", size: 16 << 20, seg: "0000000100000000000000FF", next: "000000010000000100000000", lsn: "1/0", segOfLSN: "0000000100000000000000FF"},
		{name: "64 MiB", size: 64 << 20, seg: "00000002000000070000003F", next: "000000020000000800000000", lsn: "7/FC000001", segOfLSN: "00000001000000070000003F"},
		{name: "1 GiB", size: 1 << 30, seg: "000000010000000000000003", next: "000000010000000100000000", lsn: "0/40000000", segOfLSN: "000000010000000000000000"},
		{name: "not a power of two", size: 3 << 20, wantErrNew: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewWALSegments(tc.size)
			if tc.wantErrNew {
				if err == nil {
					t.Fatalf("segment size %d accepted", tc.size)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := s.Next(tc.seg); !ok || got != tc.next {
				t.Errorf("next(%s) = %s, %v; want %s", tc.seg, got, ok, tc.next)
			}
			lsn, err := ParseLSN(tc.lsn)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.OfLSN(1, lsn); got != tc.segOfLSN {
				t.Errorf("ofLSN(%s) = %s, want %s", tc.lsn, got, tc.segOfLSN)
			}
		})
	}
	s, _ := NewWALSegments(16 << 20)
	for _, bad := range []string{"", "00000001000000000000010", "000000010000000000000100", "0000000100000000000000fe", "00000001000000000000000G"} {
		if _, _, ok := s.Parse(bad); ok {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
	have := map[string]bool{"0000000100000000000000FE": true, "0000000100000000000000FF": true, "000000010000000100000001": true}
	if n, missing := s.Chain(have, "0000000100000000000000FE", "000000010000000100000001"); n != 2 || missing != "000000010000000100000000" {
		t.Errorf("chain across a 4 GiB boundary with a gap: %d, %q", n, missing)
	}
	have["000000010000000100000000"] = true
	if n, missing := s.Chain(have, "0000000100000000000000FE", "000000010000000100000001"); n != 4 || missing != "" {
		t.Errorf("complete chain: %d, %q", n, missing)
	}
}
