package storage

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Notification states.
const (
	QueuePending = "pending"
	QueueSent    = "sent"
	QueueDropped = "dropped"
)

// Notification is one queued delivery to one notifier. The queue is durable:
// a receiver that is down, or a daemon restart, loses nothing.
type Notification struct {
	ID          int64
	Notifier    string
	AlertKey    string
	Payload     []byte // what to send, opaque to the store
	Created     time.Time
	NextAttempt time.Time
	Attempts    int // failed attempts so far
	LastError   string
	State       string
	Done        time.Time // when sent or dropped
}

// Enqueue appends n to its notifier's queue and returns its id. Created
// defaults to now and NextAttempt to Created.
func (s *Store) Enqueue(ctx context.Context, n Notification) (int64, error) {
	if s.w == nil {
		return 0, errReadOnly
	}
	if n.Notifier == "" {
		return 0, errors.New("storage: enqueue: empty notifier name")
	}
	if n.Created.IsZero() {
		n.Created = s.now()
	}
	if n.NextAttempt.IsZero() {
		n.NextAttempt = n.Created
	}
	if n.Payload == nil {
		n.Payload = []byte{}
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO notifications (notifier, alert_key, payload, created_ns, next_attempt_ns) VALUES (?, ?, ?, ?, ?)`,
		n.Notifier, n.AlertKey, n.Payload, nanos(n.Created), nanos(n.NextAttempt))
	if err != nil {
		return 0, s.wrap("queueing notification in", err)
	}
	return res.LastInsertId()
}

// Due returns up to limit pending notifications of notifier in the order
// they were enqueued, starting with the oldest and stopping at the first one
// whose next attempt is after now. A head that is backing off therefore
// holds back the ones behind it, so a receiver sees notifications in order.
func (s *Store) Due(ctx context.Context, notifier string, now time.Time, limit int) ([]Notification, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, notifier, alert_key, payload, created_ns, next_attempt_ns, attempts, last_error, state, done_ns
		FROM notifications WHERE notifier = ? AND state = 'pending' ORDER BY id LIMIT ?`, notifier, limit)
	if err != nil {
		return nil, s.wrap("reading notification queue from", err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		var n Notification
		var created, next, done int64
		if err := rows.Scan(&n.ID, &n.Notifier, &n.AlertKey, &n.Payload, &created, &next, &n.Attempts, &n.LastError, &n.State, &done); err != nil {
			return nil, s.wrap("reading notification queue from", err)
		}
		n.Created, n.NextAttempt, n.Done = fromNanos(created), fromNanos(next), fromNanos(done)
		if n.NextAttempt.After(now) {
			break
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("reading notification queue from", err)
	}
	return out, nil
}

// MarkSent records a successful delivery.
func (s *Store) MarkSent(ctx context.Context, id int64) error {
	return s.finish(ctx, id, QueueSent, "")
}

// MarkDropped gives up on a notification (too old, or rejected for good),
// keeping reason as its last error.
func (s *Store) MarkDropped(ctx context.Context, id int64, reason string) error {
	return s.finish(ctx, id, QueueDropped, reason)
}

func (s *Store) finish(ctx context.Context, id int64, state, reason string) error {
	if s.w == nil {
		return errReadOnly
	}
	q := `UPDATE notifications SET state = ?, done_ns = ? WHERE id = ? AND state = 'pending'`
	args := []any{state, nanos(s.now()), id}
	if reason != "" {
		q = `UPDATE notifications SET state = ?, done_ns = ?, last_error = ? WHERE id = ? AND state = 'pending'`
		args = []any{state, nanos(s.now()), reason, id}
	}
	return s.updateOne(ctx, q, args...)
}

// MarkRetry records a failed attempt: the notification stays pending and is
// due again at next.
func (s *Store) MarkRetry(ctx context.Context, id int64, next time.Time, lastErr string) error {
	if s.w == nil {
		return errReadOnly
	}
	return s.updateOne(ctx, `UPDATE notifications SET attempts = attempts + 1, next_attempt_ns = ?, last_error = ? WHERE id = ? AND state = 'pending'`,
		nanos(next), lastErr, id)
}

func (s *Store) updateOne(ctx context.Context, q string, args ...any) error {
	res, err := s.w.ExecContext(ctx, q, args...)
	if err != nil {
		return s.wrap("updating notification in", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrNotFound
	}
	return nil
}

// Notification returns one notification by id (any state), or ErrNotFound.
func (s *Store) Notification(ctx context.Context, id int64) (Notification, error) {
	var n Notification
	var created, next, done int64
	err := s.r.QueryRowContext(ctx, `SELECT id, notifier, alert_key, payload, created_ns, next_attempt_ns, attempts, last_error, state, done_ns
		FROM notifications WHERE id = ?`, id).Scan(&n.ID, &n.Notifier, &n.AlertKey, &n.Payload, &created, &next, &n.Attempts, &n.LastError, &n.State, &done)
	if errors.Is(err, sql.ErrNoRows) {
		return n, ErrNotFound
	}
	if err != nil {
		return n, s.wrap("reading notification from", err)
	}
	n.Created, n.NextAttempt, n.Done = fromNanos(created), fromNanos(next), fromNanos(done)
	return n, nil
}

// QueueLength is the number of pending notifications for notifier.
func (s *Store) QueueLength(ctx context.Context, notifier string) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM notifications WHERE notifier = ? AND state = 'pending'`, notifier).Scan(&n); err != nil {
		return 0, s.wrap("reading notification queue from", err)
	}
	return n, nil
}

// QueueLengths is QueueLength for every notifier with pending entries.
func (s *Store) QueueLengths(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT notifier, count(*) FROM notifications WHERE state = 'pending' GROUP BY notifier`)
	if err != nil {
		return nil, s.wrap("reading notification queue from", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			return nil, err
		}
		out[name] = n
	}
	return out, rows.Err()
}
