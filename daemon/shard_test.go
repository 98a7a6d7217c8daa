package daemon_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/probe"
)

// TestShardsCoverEveryTargetOnce: --shard=0/2 and 1/2 on the same config
// split its targets with neither overlap nor gap.
func TestShardsCoverEveryTargetOnce(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	// A long interval: only the node resolution (immediate) matters here.
	cfg := writeConfig(t, shop.ConfigWithOptions(demo.ConfigOptions{Interval: time.Minute, Timeout: 5 * time.Second, NoAlerts: true}))
	all := startDaemon(t, daemon.Options{ConfigFile: cfg})
	shards := []*running{
		startDaemon(t, daemon.Options{ConfigFile: cfg, Shard: probe.Shard{Index: 0, Count: 2}}),
		startDaemon(t, daemon.Options{ConfigFile: cfg, Shard: probe.Shard{Index: 1, Count: 2}}),
	}
	const wantTargets = (3 + 3 + 3 + 3 + 1 + 3) * 2
	var owner map[string]int
	testenv.Eventually(t, 10*time.Second, "", func() error {
		if n := len(all.d.Scheduler().Targets()); n != wantTargets {
			return fmt.Errorf("unsharded: %d targets, want %d", n, wantTargets)
		}
		owner = map[string]int{}
		for i, s := range shards {
			for _, tg := range s.d.Scheduler().Targets() {
				if prev, dup := owner[tg.Key]; dup {
					t.Fatalf("%s is in shard %d and shard %d", tg.Key, prev, i)
				}
				owner[tg.Key] = i
			}
		}
		if len(owner) != wantTargets {
			return fmt.Errorf("shards hold %d targets together, want %d", len(owner), wantTargets)
		}
		return nil
	})
	count := [2]int{}
	for _, tg := range all.d.Scheduler().Targets() {
		i, ok := owner[tg.Key]
		if !ok {
			t.Errorf("%s is in no shard", tg.Key)
		}
		count[i]++
		if want := (probe.Shard{Index: i, Count: 2}); !want.Owns(tg.Key) {
			t.Errorf("%s ran in shard %d, which does not own it", tg.Key, i)
		}
	}
	if count[0] == 0 || count[1] == 0 {
		t.Errorf("shard sizes %v: one shard got nothing", count)
	}
	t.Logf("shard sizes %v", count)
}
