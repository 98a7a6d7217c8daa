package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vantage-monitoring/vantage/alerting/webhook"
)

// Receiver is a local webhook endpoint for the demo: it prints every
// notification it gets in a readable line and keeps them for tests.
type Receiver struct {
	srv *http.Server
	ln  net.Listener
	out io.Writer

	mu   sync.Mutex
	msgs []webhook.Message
}

// StartReceiver listens on addr (e.g. "127.0.0.10:0") and prints to out
// (nil: print nothing).
func StartReceiver(addr string, out io.Writer) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo receiver: %w", err)
	}
	r := &Receiver{ln: ln, out: out}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// URL is the webhook URL to configure.
func (r *Receiver) URL() string { return "http://" + r.ln.Addr().String() + "/hook" }

// Messages returns what was received so far.
func (r *Receiver) Messages() []webhook.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]webhook.Message(nil), r.msgs...)
}

// Close stops the receiver.
func (r *Receiver) Close() error { return r.srv.Close() }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "POST webhook JSON here", http.StatusMethodNotAllowed)
		return
	}
	var m webhook.Message
	if err := json.NewDecoder(io.LimitReader(req.Body, 4<<20)).Decode(&m); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	if r.out != nil {
		for _, a := range m.Alerts {
			fmt.Fprintln(r.out, FormatAlert(a))
		}
	}
	w.WriteHeader(http.StatusOK)
}

// FormatAlert renders one webhook alert as a line for a terminal.
func FormatAlert(a webhook.Alert) string {
	var where []string
	for _, k := range []string{"check", "path", "node", "domain"} {
		if v := a.Labels[k]; v != "" {
			where = append(where, k+"="+v)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[webhook %s] %s %s", time.Now().Format("15:04:05"), strings.ToUpper(a.Status), a.Labels["alertname"])
	if len(where) > 0 {
		b.WriteString(" (" + strings.Join(where, " ") + ")")
	}
	if s := a.Annotations["summary"]; s != "" {
		b.WriteString(": " + s)
	}
	if a.Status == "resolved" && a.Annotations["resolution"] != "" {
		b.WriteString(" — " + a.Annotations["resolution"])
	} else if n := a.Annotations["fired_count"]; n != "" && n != "1" {
		b.WriteString(" — fired " + n + " times in the flap window")
		if a.Annotations["flapping"] == "true" {
			b.WriteString(", FLAPPING")
		}
	}
	if u := a.Annotations["runbook_url"]; u != "" {
		b.WriteString(" runbook: " + u)
	}
	return b.String()
}
