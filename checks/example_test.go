package checks

import "testing"

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load("../config.example.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config.example.yaml does not load:\n%v", err)
	}
	if len(cfg.Checks) < 5 || len(cfg.Alerts) < 3 || len(cfg.Notifiers) != 3 {
		t.Fatalf("example lost sections: %d checks, %d alerts, %d notifiers", len(cfg.Checks), len(cfg.Alerts), len(cfg.Notifiers))
	}
	for _, w := range cfg.Warnings {
		t.Logf("warning: %v", w)
	}
}
