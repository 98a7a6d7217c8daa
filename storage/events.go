package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"
)

// Kind is what a timeline event records.
type Kind string

// The timeline's event kinds.
const (
	TargetDown          Kind = "target_down"
	TargetUp            Kind = "target_up"
	AlertPending        Kind = "alert_pending"
	AlertFiring         Kind = "alert_firing"
	AlertResolved       Kind = "alert_resolved"
	NotificationSent    Kind = "notification_sent"
	NotificationFailed  Kind = "notification_failed"
	NotificationDropped Kind = "notification_dropped"
	ConfigReload        Kind = "config_reload"
	ConfigReloadFailed  Kind = "config_reload_failed"
	DaemonStart         Kind = "daemon_start"
	DaemonStop          Kind = "daemon_stop"
	// A node joined or left a `resolve: all` check's DNS answer.
	NodeAdded   Kind = "node_added"
	NodeRemoved Kind = "node_removed"
)

// Kinds lists every event kind.
func Kinds() []Kind {
	return []Kind{TargetDown, TargetUp, AlertPending, AlertFiring, AlertResolved,
		NotificationSent, NotificationFailed, NotificationDropped,
		ConfigReload, ConfigReloadFailed, DaemonStart, DaemonStop, NodeAdded, NodeRemoved}
}

// Event is one timeline entry. Only Time and Kind are required; the place
// fields say where it happened and are empty when they do not apply.
type Event struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	Kind      Kind      `json:"kind"`
	TargetKey string    `json:"target,omitempty"` // check/path/node
	Check     string    `json:"check,omitempty"`
	Path      string    `json:"path,omitempty"`
	Node      string    `json:"node,omitempty"`
	Domain    string    `json:"domain,omitempty"`
	Alert     string    `json:"alert,omitempty"`
	Notifier  string    `json:"notifier,omitempty"`
	// Detail is the human-readable what: the failing assertion or error,
	// a reload's diff summary, a notification's error. Redacted.
	Detail string `json:"detail,omitempty"`
	// RunID links a target event to the run that caused it (0: none).
	RunID int64 `json:"run_id,omitempty"`
	// Data is kind-specific structured detail (e.g. a reload's diff or an
	// alert's labels), stored as JSON.
	Data json.RawMessage `json:"data,omitempty"`
}

const eventCols = `id, time_ns, kind, target_key, check_name, path, node, domain, alert, notifier, detail, run_id, data`

func insertEvent(ctx context.Context, x execer, e *Event) (int64, error) {
	res, err := x.ExecContext(ctx, `INSERT INTO events (time_ns, kind, target_key, check_name, path, node, domain, alert, notifier, detail, run_id, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		nanos(e.Time), string(e.Kind), e.TargetKey, e.Check, e.Path, e.Node, e.Domain, e.Alert, e.Notifier, e.Detail, e.RunID, string(e.Data))
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// AppendEvent writes one event synchronously and returns its id. A zero
// Time means now.
func (s *Store) AppendEvent(ctx context.Context, e Event) (int64, error) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	if s.w == nil {
		return 0, errReadOnly
	}
	id, err := insertEvent(ctx, s.w, &e)
	if err != nil {
		return 0, s.wrap("appending event to", err)
	}
	return id, nil
}

// Events returns the events with since <= time <= until, oldest first. A
// zero until means no upper bound.
func (s *Store) Events(ctx context.Context, since, until time.Time) ([]Event, error) {
	hi := int64(1<<63 - 1)
	if !until.IsZero() {
		hi = until.UnixNano()
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventCols+` FROM events WHERE time_ns >= ? AND time_ns <= ? ORDER BY time_ns, id`,
		nanos(since), hi)
	if err != nil {
		return nil, s.wrap("reading events from", err)
	}
	return scanEvents(rows)
}

// LatestEvents returns the n most recent events, oldest first (for the
// status page).
func (s *Store) LatestEvents(ctx context.Context, n int) ([]Event, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT * FROM (SELECT `+eventCols+` FROM events ORDER BY time_ns DESC, id DESC LIMIT ?) ORDER BY time_ns, id`, n)
	if err != nil {
		return nil, s.wrap("reading events from", err)
	}
	return scanEvents(rows)
}

func scanEvents(rows *sql.Rows) ([]Event, error) {
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var t int64
		var kind, data string
		if err := rows.Scan(&e.ID, &t, &kind, &e.TargetKey, &e.Check, &e.Path, &e.Node, &e.Domain, &e.Alert, &e.Notifier, &e.Detail, &e.RunID, &data); err != nil {
			return nil, err
		}
		e.Time, e.Kind = fromNanos(t), Kind(kind)
		if data != "" {
			e.Data = json.RawMessage(data)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// execer is what inserts need: a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}
