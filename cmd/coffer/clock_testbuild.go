//go:build coffertestclock

package main

import (
	"os"
	"time"
)

// clock is the time source of backup and prune. In the test build it is
// the system clock moved by COFFER_TEST_CLOCK_OFFSET (a Go duration, e.g.
// 31m or -10m), so the tests can run hosts whose clocks disagree. Only
// binaries built with the tag coffertestclock read the variable: a release
// build has no such setting, so it cannot be used to mislead a real run.
func clock() func() time.Time {
	off, err := time.ParseDuration(os.Getenv("COFFER_TEST_CLOCK_OFFSET"))
	if err != nil || off == 0 {
		return time.Now
	}
	return func() time.Time { return time.Now().Add(off) }
}
