//go:build !coffertestclock

package main

import "time"

// clock is the time source of backup and prune. Release builds use the
// system clock; the tests build with the tag coffertestclock to run
// processes whose clocks differ (clock_testbuild.go).
func clock() func() time.Time { return time.Now }
