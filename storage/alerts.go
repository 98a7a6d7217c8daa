package storage

import (
	"context"
	"encoding/json"
	"time"
)

// Alert is the persisted state of one alert instance, so a restart neither
// re-pages a firing alert nor forgets a pending timer or flap history. The
// alerting engine owns the meaning of State and Data.
type Alert struct {
	Key         string            // the instance's identity (rule + grouping labels)
	Rule        string            // the alert rule's name
	Labels      map[string]string // full label set
	Annotations map[string]string
	State       string    // inactive | pending | firing | resolved
	ActiveSince time.Time // when the condition became true (pending/firing)
	FiredAt     []time.Time
	ResolvedAt  time.Time
	LastSent    time.Time
	Value       float64
	// Data is engine-private extra state (JSON), kept verbatim.
	Data json.RawMessage
	// UpdatedAt is set by SaveAlert.
	UpdatedAt time.Time
}

// SaveAlert inserts or replaces the instance with a.Key.
func (s *Store) SaveAlert(ctx context.Context, a Alert) error {
	if s.w == nil {
		return errReadOnly
	}
	labels, err := json.Marshal(nonNilMap(a.Labels))
	if err != nil {
		return err
	}
	ann, err := json.Marshal(nonNilMap(a.Annotations))
	if err != nil {
		return err
	}
	fired := make([]int64, len(a.FiredAt))
	for i, t := range a.FiredAt {
		fired[i] = t.UnixNano()
	}
	firedJSON, err := json.Marshal(fired)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO alerts (key, rule, labels, annotations, state, active_since_ns, fired_at, resolved_at_ns, last_sent_ns, value, data, updated_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(key) DO UPDATE SET rule = excluded.rule, labels = excluded.labels, annotations = excluded.annotations,
			state = excluded.state, active_since_ns = excluded.active_since_ns, fired_at = excluded.fired_at,
			resolved_at_ns = excluded.resolved_at_ns, last_sent_ns = excluded.last_sent_ns, value = excluded.value,
			data = excluded.data, updated_ns = excluded.updated_ns`,
		a.Key, a.Rule, string(labels), string(ann), a.State, nanos(a.ActiveSince), string(firedJSON),
		nanos(a.ResolvedAt), nanos(a.LastSent), a.Value, string(a.Data), nanos(s.now()))
	if err != nil {
		return s.wrap("saving alert in", err)
	}
	return nil
}

// DeleteAlert forgets an instance; deleting a missing one is not an error.
func (s *Store) DeleteAlert(ctx context.Context, key string) error {
	if s.w == nil {
		return errReadOnly
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM alerts WHERE key = ?`, key); err != nil {
		return s.wrap("deleting alert from", err)
	}
	return nil
}

// LoadAlerts returns every stored instance, ordered by key.
func (s *Store) LoadAlerts(ctx context.Context) ([]Alert, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key, rule, labels, annotations, state, active_since_ns, fired_at, resolved_at_ns, last_sent_ns, value, data, updated_ns FROM alerts ORDER BY key`)
	if err != nil {
		return nil, s.wrap("loading alerts from", err)
	}
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		var a Alert
		var labels, ann, fired, data string
		var since, resolved, sent, updated int64
		if err := rows.Scan(&a.Key, &a.Rule, &labels, &ann, &a.State, &since, &fired, &resolved, &sent, &a.Value, &data, &updated); err != nil {
			return nil, s.wrap("loading alerts from", err)
		}
		_ = json.Unmarshal([]byte(labels), &a.Labels)
		_ = json.Unmarshal([]byte(ann), &a.Annotations)
		var ns []int64
		_ = json.Unmarshal([]byte(fired), &ns)
		for _, n := range ns {
			a.FiredAt = append(a.FiredAt, fromNanos(n))
		}
		a.ActiveSince, a.ResolvedAt, a.LastSent, a.UpdatedAt = fromNanos(since), fromNanos(resolved), fromNanos(sent), fromNanos(updated)
		if data != "" {
			a.Data = json.RawMessage(data)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("loading alerts from", err)
	}
	return out, nil
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
