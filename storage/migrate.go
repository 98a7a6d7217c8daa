package storage

import (
	"context"
	"fmt"
)

// migrations are applied in order; the database's PRAGMA user_version is the
// number applied so far. Append only: never edit or reorder a released
// migration, add a new one instead.
var migrations = []string{
	// 1: the timeline, recent runs, alert instances, notification queue.
	`
CREATE TABLE events (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	time_ns    INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	target_key TEXT NOT NULL DEFAULT '',
	check_name TEXT NOT NULL DEFAULT '',
	path       TEXT NOT NULL DEFAULT '',
	node       TEXT NOT NULL DEFAULT '',
	domain     TEXT NOT NULL DEFAULT '',
	alert      TEXT NOT NULL DEFAULT '',
	notifier   TEXT NOT NULL DEFAULT '',
	detail     TEXT NOT NULL DEFAULT '',
	run_id     INTEGER NOT NULL DEFAULT 0,
	data       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_time ON events(time_ns, id);

CREATE TABLE runs (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	target_key  TEXT NOT NULL,
	check_name  TEXT NOT NULL DEFAULT '',
	path        TEXT NOT NULL DEFAULT '',
	node        TEXT NOT NULL DEFAULT '',
	start_ns    INTEGER NOT NULL,
	duration_ns INTEGER NOT NULL,
	result      TEXT NOT NULL,
	reason      TEXT NOT NULL DEFAULT '',
	steps       TEXT NOT NULL DEFAULT '',
	requests    TEXT NOT NULL DEFAULT '',
	artifacts   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_target ON runs(target_key, id);
CREATE INDEX runs_target_failed ON runs(target_key, id) WHERE result != 'success';
CREATE INDEX runs_start ON runs(start_ns);

CREATE TABLE alerts (
	key             TEXT PRIMARY KEY,
	rule            TEXT NOT NULL,
	labels          TEXT NOT NULL DEFAULT '{}',
	annotations     TEXT NOT NULL DEFAULT '{}',
	state           TEXT NOT NULL,
	active_since_ns INTEGER NOT NULL DEFAULT 0,
	fired_at        TEXT NOT NULL DEFAULT '[]',
	resolved_at_ns  INTEGER NOT NULL DEFAULT 0,
	last_sent_ns    INTEGER NOT NULL DEFAULT 0,
	value           REAL NOT NULL DEFAULT 0,
	data            TEXT NOT NULL DEFAULT '',
	updated_ns      INTEGER NOT NULL
);

CREATE TABLE notifications (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	notifier        TEXT NOT NULL,
	alert_key       TEXT NOT NULL DEFAULT '',
	payload         BLOB NOT NULL,
	created_ns      INTEGER NOT NULL,
	next_attempt_ns INTEGER NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	state           TEXT NOT NULL DEFAULT 'pending',
	done_ns         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notifications_pending ON notifications(notifier, id) WHERE state = 'pending';
CREATE INDEX notifications_done ON notifications(done_ns) WHERE state != 'pending';
`,
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int { return len(migrations) }

func (s *Store) version(ctx context.Context) (int, error) {
	db := s.r
	if s.w != nil {
		db = s.w
	}
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, s.wrap("reading schema version of", err)
	}
	return v, nil
}

func (s *Store) checkVersion() error {
	v, err := s.version(context.Background())
	if err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("storage: %s has schema version %d, newer than this vantage understands (%d); upgrade vantage", s.path, v, len(migrations))
	}
	if v == 0 {
		return fmt.Errorf("storage: %s is empty: no vantage daemon has written to it yet", s.path)
	}
	return nil
}

// migrate applies the missing migrations, each in its own transaction
// together with the user_version bump, so a crash leaves a consistent
// version.
func (s *Store) migrate(ctx context.Context) error { return s.migrateTo(ctx, migrations) }

func (s *Store) migrateTo(ctx context.Context, migrations []string) error {
	v, err := s.version(ctx)
	if err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("storage: %s has schema version %d, newer than this vantage understands (%d); upgrade vantage or use another --storage.path", s.path, v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return s.wrap("migrating", err)
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			_ = tx.Rollback()
			return s.wrap(fmt.Sprintf("applying migration %d to", i+1), err)
		}
		// PRAGMA takes no bind parameters; i+1 is our own integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			_ = tx.Rollback()
			return s.wrap("migrating", err)
		}
		if err := tx.Commit(); err != nil {
			return s.wrap(fmt.Sprintf("applying migration %d to", i+1), err)
		}
		s.log.Info().Int("version", i+1).Str("db", s.path).Msg("storage schema migrated")
	}
	return nil
}
