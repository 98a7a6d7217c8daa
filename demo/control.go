package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// controlHandler is the fault-injection API:
//
//	GET    /faults           the faults in force, by target
//	PUT    /faults/{target}  set one (JSON Fault body)
//	DELETE /faults/{target}  clear one
//	DELETE /faults           clear all
//	GET    /                 help
func (s *Shop) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctText)
		_, _ = fmt.Fprint(w, s.ControlHelp())
	})
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearAll()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /faults/{target}", func(w http.ResponseWriter, r *http.Request) {
		target := r.PathValue("target")
		if err := s.checkTarget(target, Fault{}); err != nil {
			controlError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, s.Faults()[target])
	})
	mux.HandleFunc("PUT /faults/{target}", func(w http.ResponseWriter, r *http.Request) {
		target := r.PathValue("target")
		if err := s.checkTarget(target, Fault{}); err != nil {
			controlError(w, err)
			return
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
		dec.DisallowUnknownFields()
		var f Fault
		if err := dec.Decode(&f); err != nil {
			http.Error(w, "invalid fault body: "+err.Error()+"\n"+
				`want JSON like {"latency":"1.5s","latency_ratio":0.2,"jitter":"100ms","error_ratio":0.1,"refuse":false,"reset":false,"stall":false,"dns_remove":false}`,
				http.StatusBadRequest)
			return
		}
		if err := s.SetFault(target, f); err != nil {
			controlError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, f)
	})
	mux.HandleFunc("DELETE /faults/{target}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.ClearFault(r.PathValue("target")); err != nil {
			controlError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func controlError(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	if errors.Is(err, ErrUnknownTarget) {
		code = http.StatusNotFound
	}
	http.Error(w, err.Error(), code)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctJSON)
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// ControlHelp is the control endpoint's help text, with curl examples for this shop.
func (s *Shop) ControlHelp() string {
	u := s.ControlURL()
	var b strings.Builder
	fmt.Fprintf(&b, `vantage demo shop: fault injection

Targets: %s
  (a node name hits one load-balancer node; www.shop.test hits all of them;
   a node's own fault replaces the www.shop.test one)

Fault fields (JSON): latency, jitter (durations like "1.5s"), latency_ratio,
error_ratio (0..1), refuse, reset, stall, dns_remove (nodes only) (booleans).
  refuse: connections are refused (the port is closed); reset: they are
  accepted and reset at once; stall: accepted and never answered.

  curl %[2]s/faults
  curl -X PUT %[2]s/faults/lb2 -d '{"latency":"1.5s","latency_ratio":0.2}'
  curl -X PUT %[2]s/faults/lb3 -d '{"error_ratio":0.5}'
  curl -X PUT %[2]s/faults/static.shop-cdn.test -d '{"refuse":true}'
  curl -X PUT %[2]s/faults/static.shop-cdn.test -d '{"reset":true}'
  curl -X PUT %[2]s/faults/lb1 -d '{"stall":true}'
  curl -X PUT %[2]s/faults/lb1 -d '{"dns_remove":true}'
  curl -X DELETE %[2]s/faults/lb2
  curl -X DELETE %[2]s/faults
`, strings.Join(s.Targets(), ", "), u)
	return b.String()
}
