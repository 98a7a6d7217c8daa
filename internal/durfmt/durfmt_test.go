package durfmt

import (
	"testing"
	"time"
)

// The outputs docs and tests elsewhere promise: timeline offsets, alert
// resolutions, the target_up detail, timeout reasons, status-page timings.
func TestFormat(t *testing.T) {
	const s, m, h, ms = time.Second, time.Minute, time.Hour, time.Millisecond
	for _, tc := range []struct {
		d     time.Duration
		style Style
		want  string
	}{
		{300 * ms, Elapsed, "0s"},
		{30 * s, Elapsed, "30s"},
		{2*m + 1*s, Elapsed, "2m1s"},
		{10 * m, Elapsed, "10m"},
		{37*m + 55*s, Elapsed, "37m55s"},
		{59*m + 59*s + 600*ms, Elapsed, "1h"},
		{125 * m, Elapsed, "2h5m"},
		{2*h + 20*s, Elapsed, "2h"},
		{-5 * s, Elapsed, "-5s"},

		{13 * s, Coarse, "13s"},
		{6*m + 50*s, Coarse, "7m"},
		{30 * m, Coarse, "30m"},
		{125*m + 10*s, Coarse, "2h5m"},
		{24 * h, Coarse, "24h"},

		{250 * ms, Stored, "250ms"},
		{45 * s, Stored, "45s"},
		{7 * m, Stored, "7m0s"},
		{7*m + 12*s, Stored, "7m12s"},
		{125*m + 10*s, Stored, "2h5m"},
		{2 * h, Stored, "2h0m"},

		{5 * s, Setting, "5s"},
		{1500 * ms, Setting, "1.5s"},
		{2013 * ms, Setting, "2.01s"},
		{294*ms + 400*time.Microsecond, Setting, "294ms"},
		{90 * s, Setting, "1m30s"},
		{500 * time.Microsecond, Setting, "500µs"},

		{850 * time.Microsecond, Measured, "850µs"},
		{12300 * time.Microsecond, Measured, "12.3ms"},
		{90 * ms, Measured, "90.0ms"},
		{250 * ms, Measured, "250ms"},
		{1510 * ms, Measured, "1.51s"},
		{125 * s, Measured, "2m5s"},
	} {
		if got := Format(tc.d, tc.style); got != tc.want {
			t.Errorf("Format(%v, %d) = %q, want %q", tc.d, tc.style, got, tc.want)
		}
	}
}
