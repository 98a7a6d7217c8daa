package storage

import (
	"context"
	"database/sql"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// writeItem is one queued asynchronous write: a run, an event, or both
// (the event then links to the run), or a flush marker.
type writeItem struct {
	run   *Run
	event *Event
	flush chan struct{}
}

// maxBatch bounds one write transaction: large enough to absorb 1000 runs/s
// in a few commits, small enough to keep each commit short.
const maxBatch = 512

// RecordRunAsync queues a run (and optionally an event caused by it, which
// gets the run's id) without waiting for the disk. When the queue is full
// the write is dropped and counted; it reports whether it was queued.
func (s *Store) RecordRunAsync(r Run, e *Event) bool {
	return s.enqueue(writeItem{run: &r, event: e})
}

// AppendEventAsync queues an event without waiting; see RecordRunAsync.
func (s *Store) AppendEventAsync(e Event) bool {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	return s.enqueue(writeItem{event: &e})
}

func (s *Store) enqueue(it writeItem) bool {
	s.qmu.RLock()
	defer s.qmu.RUnlock()
	if s.closed || s.queue == nil {
		s.dropped.Inc()
		return false
	}
	select {
	case s.queue <- it:
		return true
	default:
		s.dropped.Inc()
		return false
	}
}

// Flush waits until every write queued before it is committed.
func (s *Store) Flush(ctx context.Context) error {
	ch := make(chan struct{})
	s.qmu.RLock()
	if s.closed || s.queue == nil {
		s.qmu.RUnlock()
		return nil
	}
	select {
	case s.queue <- writeItem{flush: ch}:
	case <-ctx.Done():
		s.qmu.RUnlock()
		return ctx.Err()
	}
	s.qmu.RUnlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writer drains the queue in batches, one transaction per batch, until the
// queue is closed and empty.
func (s *Store) writer() {
	defer close(s.done)
	batch := make([]writeItem, 0, maxBatch)
	for it := range s.queue {
		batch = append(batch[:0], it)
	fill:
		for len(batch) < maxBatch {
			select {
			case it, ok := <-s.queue:
				if !ok {
					break fill
				}
				batch = append(batch, it)
			default:
				break fill
			}
		}
		s.writeBatch(batch)
	}
}

func (s *Store) writeBatch(batch []writeItem) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		targets := map[string]bool{}
		for _, it := range batch {
			var runID int64
			if it.run != nil {
				id, err := insertRun(ctx, tx, it.run)
				if err != nil {
					return err
				}
				runID = id
				targets[it.run.TargetKey] = true
				n++
			}
			if it.event != nil {
				if runID != 0 && it.event.RunID == 0 {
					it.event.RunID = runID
				}
				if _, err := insertEvent(ctx, tx, it.event); err != nil {
					return err
				}
				n++
			}
		}
		for t := range targets {
			if err := s.boundRuns(ctx, tx, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && n > 0 {
		s.werrs.Inc()
		s.log.Error().Err(s.wrap("writing to", err)).Int("items", n).Msg("storage write failed; runs and events of this batch are lost")
	}
	for _, it := range batch {
		if it.flush != nil {
			close(it.flush)
		}
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
