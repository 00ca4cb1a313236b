// Package headless takes screenshots of local HTML pages with headless
// Chromium, for the tests that look at coffer's reports as a person would.
package headless

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Screenshot renders the page at htmlPath in a window of width×height and
// returns the picture; the PNG is written beside the page, so that a person
// can look at it. The browser gets a fresh profile and home under tmp, and
// no network.
func Screenshot(htmlPath string, width, height int, tmp string) (image.Image, error) {
	browser := "/usr/bin/chromium"
	if _, err := os.Stat(browser); err != nil {
		if browser, err = exec.LookPath("chromium"); err != nil {
			return nil, errors.New("chromium not found: install chromium (apt-get install chromium) or run .ci/run")
		}
	}
	pngPath := htmlPath[:len(htmlPath)-len(filepath.Ext(htmlPath))] + ".png"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--hide-scrollbars", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(tmp, "profile"), fmt.Sprintf("--window-size=%d,%d", width, height),
		"--screenshot="+pngPath, "file://"+htmlPath)
	cmd.Env = append(os.Environ(), "HOME="+tmp)
	cmd.WaitDelay = 5 * time.Second // Chromium's helpers may hold the output pipe open
	logs, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, fmt.Errorf("chromium took more than 60 s to take the screenshot:\n%s", logs)
	}
	if err != nil {
		return nil, fmt.Errorf("chromium: %v\n%s", err, logs)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		return nil, fmt.Errorf("no screenshot: %v\nchromium said:\n%s", err, logs)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("screenshot %s: %w", pngPath, err)
	}
	return img, nil
}

// Count counts the pixels of r in img that match.
func Count(img image.Image, r image.Rectangle, match func(r, g, b uint8) bool) int {
	n := 0
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if match(uint8(cr>>8), uint8(cg>>8), uint8(cb>>8)) {
				n++
			}
		}
	}
	return n
}
