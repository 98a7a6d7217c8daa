package storage

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/probe"
)

var t0 = time.Date(2025, 11, 28, 21, 0, 0, 0, time.UTC)

func openTest(t *testing.T, dir string, o Options) *Store {
	t.Helper()
	if o.PruneInterval == 0 {
		o.PruneInterval = -1
	}
	o.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestOpenFreshThenReopenKeepsData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // does not exist yet
	s := openTest(t, dir, Options{})
	ctx := t.Context()
	v, err := s.version(ctx)
	if err != nil || v != SchemaVersion() {
		t.Fatalf("version = %d, %v; want %d", v, err, SchemaVersion())
	}
	var mode string
	if err := s.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	if _, err := s.AppendEvent(ctx, Event{Time: t0, Kind: DaemonStart}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatalf("second Close: %v", err)
	}
	s2 := openTest(t, dir, Options{})
	evs, err := s2.Events(ctx, time.Time{}, time.Time{})
	if err != nil || len(evs) != 1 || evs[0].Kind != DaemonStart || !evs[0].Time.Equal(t0) {
		t.Fatalf("after reopen: %+v, %v", evs, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ArtifactsDir)); err != nil {
		t.Fatalf("artifacts dir not created: %v", err)
	}
}

func TestMigrationsOnExistingDatabase(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	ctx := t.Context()
	if _, err := s.AppendEvent(ctx, Event{Time: t0, Kind: DaemonStart, Detail: "kept"}); err != nil {
		t.Fatal(err)
	}
	// A later release appends a migration: it runs once, on top of the
	// existing data.
	next := append(append([]string{}, migrations...), `ALTER TABLE events ADD COLUMN extra TEXT NOT NULL DEFAULT 'x'`)
	if err := s.migrateTo(ctx, next); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	if err := s.migrateTo(ctx, next); err != nil { // idempotent
		t.Fatalf("migrating again: %v", err)
	}
	v, _ := s.version(ctx)
	if v != len(next) {
		t.Fatalf("version = %d, want %d", v, len(next))
	}
	var extra, detail string
	if err := s.w.QueryRow(`SELECT extra, detail FROM events`).Scan(&extra, &detail); err != nil || extra != "x" || detail != "kept" {
		t.Fatalf("row after migration: %q %q %v", extra, detail, err)
	}
	s.Close()
	// This build does not know version 2: refuse rather than misread.
	_, err := Open(dir, Options{PruneInterval: -1})
	if err == nil || !strings.Contains(err.Error(), "newer than this vantage") {
		t.Fatalf("opening a newer schema: %v", err)
	}
}

func TestCorruptDatabaseIsAClearError(t *testing.T) {
	dir := t.TempDir()
	garbage := []byte(strings.Repeat("this is not an SQLite database, it is a text file. ", 200))
	if err := os.WriteFile(filepath.Join(dir, FileName), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{PruneInterval: -1})
	if err == nil {
		t.Fatal("Open succeeded on a corrupt file")
	}
	if !strings.Contains(err.Error(), "corrupt or not a vantage database") || !strings.Contains(err.Error(), FileName) {
		t.Fatalf("unclear error: %v", err)
	}
	// And read-only (vantage timeline) says the same.
	_, err = Open(dir, Options{ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("read-only open of a corrupt file: %v", err)
	}
}

// TestDamagedDatabaseRefusedAtStart: a real database whose header is
// fine but one of its table pages is overwritten passes the open, so only
// the integrity check at start finds it; the error says what to do, and
// the file is left as it was for a backup or a closer look.
func TestDamagedDatabaseRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i := range 2000 {
		mustID(t)(s.AppendEvent(ctx, Event{Time: t0.Add(time.Duration(i) * time.Second), Kind: TargetDown,
			Detail: strings.Repeat(fmt.Sprint("detail ", i, " "), 20)}))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	db, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	if len(db) < 40*page {
		t.Fatalf("database is only %d bytes; the test wants a page in the middle of a table", len(db))
	}
	// Page 30 is a leaf of the events table: scramble its header and cells.
	for i := 30 * page; i < 30*page+512; i++ {
		db[i] ^= 0x5a
	}
	if err := os.WriteFile(path, db, 0o600); err != nil {
		t.Fatal(err)
	}

	_, err = Open(dir, Options{PruneInterval: -1})
	if err == nil {
		t.Fatal("Open succeeded on a damaged database")
	}
	for _, want := range []string{path, "integrity check", "mv " + path + " " + path + ".corrupt", "fresh", "restore a backup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(after, db) {
		t.Errorf("the damaged file was changed by the refused start (%v)", err)
	}
	// Moved aside as the error says, vantage starts with a fresh database.
	if err := os.Rename(path, path+".corrupt"); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{PruneInterval: -1})
	if err != nil {
		t.Fatalf("fresh start after moving the file aside: %v", err)
	}
	defer s.Close()
	if evs, err := s.Events(ctx, time.Time{}, time.Time{}); err != nil || len(evs) != 0 {
		t.Fatalf("fresh database: %d events, %v", len(evs), err)
	}
}

// roDirEnv makes the test binary TestReadOnlyDirectory's child.
const roDirEnv = "VANTAGE_STORAGE_RO_DIR"

// TestReadOnlyDirectory runs the check as an unprivileged user: root
// ignores directory permissions, so when the test runs as root it re-runs
// itself as nobody.
func TestReadOnlyDirectory(t *testing.T) {
	if dir, child, err := testenv.ChildMode(roDirEnv); err != nil {
		t.Fatal(err)
	} else if child {
		_, err := Open(dir, Options{PruneInterval: -1})
		fmt.Fprintf(os.Stderr, "OPEN-ERROR: %v\n", err)
		return
	}
	base, err := os.MkdirTemp("", "vantage-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(base, "ro"), 0o755); _ = os.RemoveAll(base) })
	ro := filepath.Join(base, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	var msg string
	if os.Geteuid() != 0 {
		_, err := Open(ro, Options{PruneInterval: -1})
		msg = fmt.Sprint(err)
	} else {
		// Copy the test binary where nobody can run it.
		bin := filepath.Join(base, "storage.test")
		data, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-test.run=^TestReadOnlyDirectory$")
		cmd.Env = append(os.Environ(), testenv.ChildEnv(roDirEnv, ro))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, _ := cmd.CombinedOutput()
		msg = string(out)
		if !strings.Contains(msg, "OPEN-ERROR:") {
			t.Fatalf("child did not run: %s", out)
		}
	}
	if !strings.Contains(msg, "not writable") || !strings.Contains(msg, ro) {
		t.Fatalf("want a clear not-writable error naming %s, got: %s", ro, msg)
	}
}

func TestReadOnlyOpen(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing"), Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "no database") {
		t.Fatalf("read-only open of a missing db: %v", err)
	}
	w := openTest(t, dir, Options{})
	if _, err := w.AppendEvent(t.Context(), Event{Time: t0, Kind: DaemonStart}); err != nil {
		t.Fatal(err)
	}
	// While the writer is open (a running daemon), a reader sees its data.
	r := openTest(t, dir, Options{ReadOnly: true})
	evs, err := r.Events(t.Context(), time.Time{}, time.Time{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("reader: %v %v", evs, err)
	}
	if _, err := r.AppendEvent(t.Context(), Event{Kind: DaemonStop}); err == nil {
		t.Fatal("a read-only store accepted a write")
	}
}

func TestEventsRangeAndOrder(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	ctx := t.Context()
	data := json.RawMessage(`{"added":["a"]}`)
	in := []Event{
		{Time: t0.Add(2 * time.Minute), Kind: TargetDown, TargetKey: "home/direct/lb2", Check: "home", Path: "direct", Node: "lb2", Detail: "connection refused"},
		{Time: t0, Kind: DaemonStart},
		{Time: t0.Add(5 * time.Minute), Kind: ConfigReload, Detail: "1 added", Data: data},
		{Time: t0.Add(2 * time.Minute), Kind: AlertFiring, Alert: "NodeDown"},
	}
	for _, e := range in {
		if _, err := s.AppendEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Events(ctx, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range all {
		kinds = append(kinds, string(e.Kind))
	}
	// Time order, ties in append order.
	if got := strings.Join(kinds, ","); got != "daemon_start,target_down,alert_firing,config_reload" {
		t.Fatalf("order: %s", got)
	}
	if all[1].Node != "lb2" || all[1].Detail != "connection refused" || all[1].TargetKey != "home/direct/lb2" {
		t.Fatalf("fields lost: %+v", all[1])
	}
	if string(all[3].Data) != string(data) {
		t.Fatalf("data = %s", all[3].Data)
	}
	// Both bounds are inclusive.
	mid, err := s.Events(ctx, t0.Add(2*time.Minute), t0.Add(2*time.Minute))
	if err != nil || len(mid) != 2 {
		t.Fatalf("inclusive range: %d %v", len(mid), err)
	}
	latest, err := s.LatestEvents(ctx, 2)
	if err != nil || len(latest) != 2 || latest[1].Kind != ConfigReload || latest[0].Kind != AlertFiring {
		t.Fatalf("latest: %+v %v", latest, err)
	}
}

func TestRetentionDeletesOldRows(t *testing.T) {
	clk := testenv.NewClock(t0)
	dir := t.TempDir()
	s := openTest(t, dir, Options{Retention: 24 * time.Hour, Now: clk.Now})
	ctx := t.Context()
	old, recent := t0.Add(-48*time.Hour), t0.Add(-time.Hour)
	oldArt := writeArtifact(t, dir, Run{Check: "a", Start: old}, ".png")
	newArt := writeArtifact(t, dir, Run{Check: "a", Start: recent}, ".png")
	outside := filepath.Join(t.TempDir(), "outside.png")
	if err := os.WriteFile(outside, []byte("png"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustID(t)(s.AppendEvent(ctx, Event{Time: old, Kind: TargetDown}))
	mustID(t)(s.AppendEvent(ctx, Event{Time: recent, Kind: TargetUp}))
	// A tampered row also lists the database and a file elsewhere: prune
	// removes only the run's own file.
	oldRun := mustID(t)(s.RecordRun(ctx, Run{TargetKey: "a", Check: "a", Start: old, Result: "failure", Artifacts: []string{oldArt, outside, FileName}}))
	newRun := mustID(t)(s.RecordRun(ctx, Run{TargetKey: "a", Check: "a", Start: recent, Result: "success", Artifacts: []string{newArt}}))
	oldArt, newArt = filepath.Join(dir, oldArt), filepath.Join(dir, newArt)
	// Notifications: an old sent one goes, an old pending one stays.
	clk.Set(old)
	sent := mustID(t)(s.Enqueue(ctx, Notification{Notifier: "wh", Payload: []byte("1")}))
	pending := mustID(t)(s.Enqueue(ctx, Notification{Notifier: "wh", Payload: []byte("2")}))
	if err := s.MarkSent(ctx, sent); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveAlert(ctx, Alert{Key: "resolved-old", Rule: "r", State: "inactive"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveAlert(ctx, Alert{Key: "firing-old", Rule: "r", State: "firing"}); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0)

	if err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _ := s.Events(ctx, time.Time{}, time.Time{})
	if len(evs) != 1 || evs[0].Kind != TargetUp {
		t.Fatalf("events after prune: %+v", evs)
	}
	if _, err := s.Run(ctx, oldRun); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old run: %v", err)
	}
	if _, err := s.Run(ctx, newRun); err != nil {
		t.Fatalf("recent run: %v", err)
	}
	if _, err := os.Stat(oldArt); !os.IsNotExist(err) {
		t.Fatalf("old artifact still there: %v", err)
	}
	if _, err := os.Stat(newArt); err != nil {
		t.Fatalf("recent artifact removed: %v", err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("a file outside the storage dir was removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Fatalf("the database was removed as an artifact: %v", err)
	}
	if _, err := s.Notification(ctx, sent); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old sent notification: %v", err)
	}
	if _, err := s.Notification(ctx, pending); err != nil {
		t.Fatalf("pending notification pruned: %v", err)
	}
	alerts, _ := s.LoadAlerts(ctx)
	if len(alerts) != 1 || alerts[0].Key != "firing-old" {
		t.Fatalf("alerts after prune: %+v", alerts)
	}
}

func mustID(t *testing.T) func(int64, error) int64 {
	return func(id int64, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
}

func TestRunsBoundedPerTarget(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{RunsPerTarget: 5})
	ctx := t.Context()
	var ids []int64
	var arts []string
	for i := range 8 {
		res := "success"
		if i == 5 {
			res = "failure"
		}
		r := Run{TargetKey: "A", Check: "A", Start: t0.Add(time.Duration(i) * time.Second), Result: res, Reason: fmt.Sprint("run ", i)}
		arts = append(arts, filepath.Join(dir, writeArtifact(t, dir, r, ".png")))
		r.Artifacts = []string{arts[i]}
		ids = append(ids, mustID(t)(s.RecordRun(ctx, r)))
	}
	mustID(t)(s.RecordRun(ctx, Run{TargetKey: "B", Start: t0, Result: "success"}))
	runs, err := s.RecentRuns(ctx, "A", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 5 || runs[0].ID != ids[7] || runs[4].ID != ids[3] {
		t.Fatalf("kept %d runs, newest %d oldest %d; want 5 from %d to %d", len(runs), runs[0].ID, runs[len(runs)-1].ID, ids[7], ids[3])
	}
	if runs[0].Artifacts[0] != arts[7] {
		t.Fatalf("artifacts = %v", runs[0].Artifacts)
	}
	for i := range 3 {
		if _, err := os.Stat(arts[i]); !os.IsNotExist(err) {
			t.Fatalf("artifact of dropped run %d still there", i)
		}
	}
	if b, _ := s.RecentRuns(ctx, "B", 10); len(b) != 1 {
		t.Fatalf("other target affected: %d runs", len(b))
	}
	f, err := s.LatestFailedRun(ctx, "A")
	if err != nil || f.ID != ids[5] || f.Reason != "run 5" {
		t.Fatalf("latest failed: %+v %v", f, err)
	}
	if _, err := s.LatestFailedRun(ctx, "B"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no failed run: %v", err)
	}
	if _, err := s.Run(ctx, 9999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing run: %v", err)
	}
}

func TestAsyncWritesLinkEventsAndDropWhenFull(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{QueueSize: 2})
	ctx := t.Context()
	if !s.RecordRunAsync(Run{TargetKey: "A", Start: t0, Result: "failure"}, &Event{Time: t0, Kind: TargetDown, TargetKey: "A"}) {
		t.Fatal("not queued")
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _ := s.Events(ctx, time.Time{}, time.Time{})
	runs, _ := s.RecentRuns(ctx, "A", 10)
	if len(evs) != 1 || len(runs) != 1 || evs[0].RunID != runs[0].ID {
		t.Fatalf("event not linked to its run: %+v %+v", evs, runs)
	}

	// Another process holds the write lock: the writer stalls, the queue
	// fills, and further writes are dropped instead of blocking.
	other, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The first write is taken by the writer, which then stalls on the
	// lock holding it; only then is the queue's bound exact (the writer
	// drains whatever is queued into its batch before it writes).
	if !s.RecordRunAsync(Run{TargetKey: "B", Start: t0, Result: "success"}, nil) {
		t.Fatal("first write not queued")
	}
	queued := 1
	for len(s.queue) > 0 && time.Since(start) < 500*time.Millisecond {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // past the batch fill, into the locked transaction
	for range 19 {
		if s.RecordRunAsync(Run{TargetKey: "B", Start: t0, Result: "success"}, nil) {
			queued++
		}
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("async writes blocked for %s", time.Since(start))
	}
	if queued > 3 || s.Dropped() < 17 {
		t.Fatalf("queued %d, dropped %v; want at most 3 queued", queued, s.Dropped())
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	runs, _ = s.RecentRuns(ctx, "B", 100)
	if len(runs) != queued {
		t.Fatalf("stored %d runs, queued %d", len(runs), queued)
	}
}

func TestCloseFlushesQueuedWrites(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				s.RecordRunAsync(Run{TargetKey: fmt.Sprint("t", g), Start: t0.Add(time.Duration(i)), Result: "success"}, nil)
				s.AppendEventAsync(Event{Time: t0, Kind: TargetUp})
			}
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.RecordRunAsync(Run{TargetKey: "late"}, nil) {
		t.Fatal("a closed store accepted a write")
	}
	r := openTest(t, dir, Options{ReadOnly: true})
	evs, _ := r.Events(t.Context(), time.Time{}, time.Time{})
	if want := 400 - int(s.Dropped()); len(evs)+int(s.Dropped()) < 400 || len(evs) > 400 {
		t.Fatalf("events after close = %d, want %d (dropped %v)", len(evs), want, s.Dropped())
	}
}

func TestNotificationQueueOrderAndRetry(t *testing.T) {
	clk := testenv.NewClock(t0)
	s := openTest(t, t.TempDir(), Options{Now: clk.Now})
	ctx := t.Context()
	var ids []int64
	for i := range 3 {
		ids = append(ids, mustID(t)(s.Enqueue(ctx, Notification{Notifier: "wh", AlertKey: "k", Payload: []byte{byte('a' + i)}})))
	}
	mustID(t)(s.Enqueue(ctx, Notification{Notifier: "slack", Payload: []byte("s")}))
	if _, err := s.Enqueue(ctx, Notification{}); err == nil {
		t.Fatal("empty notifier accepted")
	}
	due, err := s.Due(ctx, "wh", t0, 10)
	if err != nil || len(due) != 3 || string(due[0].Payload) != "a" || string(due[2].Payload) != "c" || !due[0].Created.Equal(t0) {
		t.Fatalf("due: %+v %v", due, err)
	}
	if due, _ := s.Due(ctx, "wh", t0, 2); len(due) != 2 {
		t.Fatalf("limit ignored: %d", len(due))
	}
	// The head fails: it and everything behind it wait for its retry time.
	if err := s.MarkRetry(ctx, ids[0], t0.Add(time.Minute), "503 Service Unavailable"); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.Due(ctx, "wh", t0.Add(30*time.Second), 10); len(due) != 0 {
		t.Fatalf("items overtook a backing-off head: %+v", due)
	}
	due, _ = s.Due(ctx, "wh", t0.Add(time.Minute), 10)
	if len(due) != 3 || due[0].ID != ids[0] || due[0].Attempts != 1 || due[0].LastError != "503 Service Unavailable" {
		t.Fatalf("after backoff: %+v", due)
	}
	if n, _ := s.QueueLength(ctx, "wh"); n != 3 {
		t.Fatalf("queue length = %d", n)
	}
	if err := s.MarkSent(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSent(ctx, ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("sending twice: %v", err)
	}
	if err := s.MarkDropped(ctx, ids[1], "older than max_age 6h"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRetry(ctx, ids[1], t0, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("retrying a dropped one: %v", err)
	}
	n, _ := s.Notification(ctx, ids[1])
	if n.State != QueueDropped || n.LastError != "older than max_age 6h" || !n.Done.Equal(t0) {
		t.Fatalf("dropped: %+v", n)
	}
	due, _ = s.Due(ctx, "wh", t0.Add(time.Hour), 10)
	if len(due) != 1 || due[0].ID != ids[2] {
		t.Fatalf("remaining: %+v", due)
	}
	lens, _ := s.QueueLengths(ctx)
	if lens["wh"] != 1 || lens["slack"] != 1 {
		t.Fatalf("lengths: %v", lens)
	}
}

func TestQueueSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	id := mustID(t)(s.Enqueue(t.Context(), Notification{Notifier: "wh", Payload: []byte(`{"a":1}`)}))
	s.Close()
	s2 := openTest(t, dir, Options{})
	due, err := s2.Due(t.Context(), "wh", time.Now().Add(time.Second), 10)
	if err != nil || len(due) != 1 || due[0].ID != id || string(due[0].Payload) != `{"a":1}` {
		t.Fatalf("after restart: %+v %v", due, err)
	}
}

func TestAlertRoundTrip(t *testing.T) {
	clk := testenv.NewClock(t0)
	dir := t.TempDir()
	s := openTest(t, dir, Options{Now: clk.Now})
	ctx := t.Context()
	a := Alert{
		Key: "LoadBalancerNodeDegraded{node=lb2}", Rule: "LoadBalancerNodeDegraded",
		Labels:      map[string]string{"alertname": "LoadBalancerNodeDegraded", "node": "lb2", "severity": "page"},
		Annotations: map[string]string{"summary": "lb2 is slow"},
		State:       "firing", ActiveSince: t0.Add(-3 * time.Minute),
		FiredAt:  []time.Time{t0.Add(-50 * time.Minute), t0.Add(-2 * time.Minute)},
		LastSent: t0.Add(-time.Minute), Value: 2.5, Data: json.RawMessage(`{"keep_until":0}`),
	}
	if err := s.SaveAlert(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveAlert(ctx, Alert{Key: "other", Rule: "r", State: "pending"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir, Options{Now: clk.Now})
	got, err := s.LoadAlerts(ctx)
	if err != nil || len(got) != 2 {
		t.Fatalf("load: %+v %v", got, err)
	}
	g := got[0]
	if g.Key != a.Key || g.Rule != a.Rule || g.State != "firing" || g.Labels["node"] != "lb2" || g.Annotations["summary"] != "lb2 is slow" ||
		!g.ActiveSince.Equal(a.ActiveSince) || len(g.FiredAt) != 2 || !g.FiredAt[1].Equal(a.FiredAt[1]) ||
		!g.LastSent.Equal(a.LastSent) || g.Value != 2.5 || string(g.Data) != string(a.Data) || !g.UpdatedAt.Equal(t0) || !g.ResolvedAt.IsZero() {
		t.Fatalf("round trip:\n got %+v\nwant %+v", g, a)
	}
	// Update in place, then delete.
	a.State, a.ResolvedAt = "inactive", t0
	if err := s.SaveAlert(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, _ = s.LoadAlerts(ctx)
	if got[0].State != "inactive" || !got[0].ResolvedAt.Equal(t0) || len(got) != 2 {
		t.Fatalf("update: %+v", got)
	}
	if err := s.DeleteAlert(ctx, a.Key); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.LoadAlerts(ctx); len(got) != 1 || got[0].Key != "other" {
		t.Fatalf("delete: %+v", got)
	}
}

// writeArtifact writes a file named as the browser names r's artifacts and
// returns its path relative to the storage directory.
func writeArtifact(t *testing.T, dir string, r Run, ext string) string {
	t.Helper()
	rel := probe.ArtifactStem(r.Check, r.Path, r.Node, r.Start) + ext
	full := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(full), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte("png"), 0o600); err != nil {
		t.Fatal(err)
	}
	return rel
}

// TestArtifactPathOwnFilesOnly: a run resolves only its own files; a
// tampered row naming the database, another run's file, a path outside,
// or a symlink (file or directory) leading out is refused.
func TestArtifactPathOwnFilesOnly(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	run := Run{ID: 1, Check: "shop home", Path: "direct", Node: "lb1", Start: t0}
	other := Run{ID: 2, Check: "shop home", Path: "direct", Node: "lb2", Start: t0}
	own := writeArtifact(t, dir, run, ".png")
	othersFile := writeArtifact(t, dir, other, ".png")
	ownDir := filepath.Dir(filepath.Join(dir, own))
	if p, err := s.ArtifactPath(run, own); err != nil || p != filepath.Join(dir, own) {
		t.Fatalf("relative own file: %q %v", p, err)
	}
	if _, err := s.ArtifactPath(run, filepath.Join(dir, own)); err != nil {
		t.Fatalf("absolute own file: %v", err)
	}
	if _, err := s.ArtifactPath(run, strings.TrimSuffix(own, ".png")+".json"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("own name, no file: %v, want ErrNotFound", err)
	}

	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("s"), 0o600)
	stem := strings.TrimSuffix(own, ".png")
	// The run's own name, but a symlink to the database.
	if err := os.Symlink(filepath.Join(dir, FileName), filepath.Join(dir, stem+".json")); err != nil {
		t.Fatal(err)
	}
	// A run of another check whose directory is a symlink out.
	evil := Run{ID: 3, Check: "evil", Start: t0}
	if err := os.Symlink(filepath.Dir(secret), filepath.Join(dir, ArtifactsDir, "evil")); err != nil {
		t.Fatal(err)
	}
	evilName := probe.ArtifactStem(evil.Check, "", "", t0) + ".png"
	if err := os.WriteFile(filepath.Join(filepath.Dir(secret), filepath.Base(evilName)), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		r   Run
		bad string
	}{
		{run, FileName},
		{run, filepath.Join(dir, FileName)},
		{run, othersFile},
		{run, stem + ".json"},
		{run, stem},
		{run, ownDir},
		{run, stem + ".png/../../../" + FileName},
		{run, "../" + filepath.Base(filepath.Dir(secret)) + "/secret"},
		{run, secret},
		{run, "/etc/passwd"},
		{run, ""},
		{evil, evilName},
	} {
		if p, err := s.ArtifactPath(c.r, c.bad); err == nil {
			t.Errorf("run %d: ArtifactPath(%q) = %q, want refusal", c.r.ID, c.bad, p)
		}
	}
}

func TestCloseLeavesOneFile(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if _, err := s.AppendEvent(t.Context(), Event{Kind: DaemonStart}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(filepath.Join(dir, FileName+suffix)); !os.IsNotExist(err) {
			t.Errorf("%s%s left behind: %v", FileName, suffix, err)
		}
	}
}
