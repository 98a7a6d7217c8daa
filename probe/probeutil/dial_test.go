package probeutil

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestCertReason(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if s := CertReason(now.Add(20*24*time.Hour), now, 14); s != "" {
		t.Fatalf("%q", s)
	}
	if s := CertReason(now.Add(-48*time.Hour), now, 14); !strings.Contains(s, "expired 2 days ago") {
		t.Fatalf("%q", s)
	}
}

// TimeoutReason names the check's timeout, not the slightly shorter time
// between the run's start and its deadline; without one it shows the latter.
func TestTimeoutReason(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(294*time.Millisecond))
	defer cancel()
	if got := TimeoutReason(ctx, 300*time.Millisecond, start, "tls"); got != "timeout after 300ms during tls" {
		t.Errorf("with a configured timeout: %q", got)
	}
	if got := TimeoutReason(ctx, 0, start, ""); got != "timeout after 294ms" {
		t.Errorf("without one: %q", got)
	}
}
