package httpprobe

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
)

// FuzzJSONExpect checks a fuzzed body against `json:` expectations and
// `extract:` on a fuzzed gjson path (docs/fuzzing.md).
func FuzzJSONExpect(f *testing.F) {
	for _, s := range []struct{ body, path, want string }{
		{`{"status":"ok","items":[1,2,3],"count":"3"}`, "status", "ok"},
		{`{"status":"ok","items":[1,2,3]}`, "items.#", "3"},
		{`{"a":{"b":[{"c":"x"},{"c":"y"}]}}`, "a.b.#.c", `["x","y"]`},
		{`{"a":{"b":[{"c":"x"},{"c":"y"}]}}`, `a.b.#(c=="y").c`, "y"},
		{`{"a":{` + "\n" + `  "b": 1` + "\n" + `}}`, "a", `{"b":1}`},
		{`{"name":"` + strings.Repeat("é", 60) + `"}`, "name", "x"},
		{`{"n":1e999,"m":-0,"big":99999999999999999999}`, "n", "1"},
		{`{"a":"\u0000\ud800"}`, "a", "\x00"},
		{`[` + strings.Repeat(`[`, 1000) + strings.Repeat(`]`, 1000) + `]`, "0.0.0.0", "[]"},
		{`{"a":1}`, `@reverse`, `{"a":1}`},
		{`{"a":1}`, `..0`, ""},
		{`{"a":1}`, `a|@pretty`, ""},
		{`{"a":1}`, `{a,b:a}`, ""},
		{`{"a":1}`, `#(a>0)#`, ""},
		{"\xff\xfe", "a", "b"},
		{``, ``, ``},
		{`{"token":"s3cr3t"}`, "token", "s3cr3t"},
	} {
		f.Add([]byte(s.body), s.path, s.want)
	}
	yes, no := true, false
	zero := 0.0
	f.Fuzz(func(t *testing.T, body []byte, path, want string) {
		defer testenv.HangGuard()()
		var wantJSON any
		if json.Unmarshal([]byte(want), &wantJSON) != nil {
			wantJSON = want
		}
		for _, je := range []JSONExpect{
			{Exists: &yes}, {Exists: &no}, {Eq: want}, {Eq: wantJSON}, {Ne: wantJSON},
			{Gt: &zero}, {Lte: &zero}, {Contains: want},
		} {
			plan, err := compileExpect(&checks.Expect{Spec: &Expect{Status: []int{200}, JSON: map[string]JSONExpect{path: je}}})
			if err != nil {
				t.Fatal(err)
			}
			checkReason(t, "json", plan.check(&response{status: 200, body: body}), body, path, want)
		}
		vars := map[string]string{}
		reason := extractVars([]extractPlan{{name: "v", path: path}}, body, vars)
		checkReason(t, "extract", reason, body, path, want)
		if reason == "" {
			if got, res := vars["v"], gjson.GetBytes(body, path); got != res.String() {
				t.Errorf("extract %q from %q gave %q, want %q", path, body, got, res.String())
			}
		}
	})
}

// checkReason asserts that a failure reason is one line of valid UTF-8
// (when what it quotes is) and not much longer than the path and value it
// names.
func checkReason(t *testing.T, what, reason string, body []byte, path, want string) {
	t.Helper()
	if strings.ContainsAny(reason, "\r\n") {
		t.Errorf("%s reason is not one line: %q", what, reason)
	}
	if utf8.Valid(body) && utf8.ValidString(path) && utf8.ValidString(want) && !utf8.ValidString(reason) {
		t.Errorf("%s reason is not valid UTF-8: %q", what, reason)
	}
	if max := 6*(len(path)+len(want)) + 400; len(reason) > max {
		t.Errorf("%s reason is %d bytes, more than %d: %q", what, len(reason), max, reason)
	}
}
