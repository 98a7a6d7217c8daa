package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// newLogger builds the process logger: logfmt (the Prometheus default) or
// JSON, at the given level.
func newLogger(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("unknown log level %q (debug, info, warn, error)", level)
	}
	var out io.Writer
	switch format {
	case "json":
		out = w
	case "logfmt":
		out = zerolog.ConsoleWriter{
			Out: w, NoColor: true, TimeFormat: time.RFC3339Nano,
			PartsOrder:      []string{zerolog.TimestampFieldName, zerolog.LevelFieldName, zerolog.MessageFieldName},
			FormatTimestamp: func(i any) string { return "ts=" + fmt.Sprint(i) },
			FormatLevel:     func(i any) string { return "level=" + fmt.Sprint(i) },
			FormatMessage: func(i any) string {
				if i == nil {
					return ""
				}
				return "msg=" + logfmtValue(fmt.Sprint(i))
			},
			FormatFieldName:     func(i any) string { return fmt.Sprint(i) + "=" },
			FormatFieldValue:    func(i any) string { return logfmtValue(text(i)) },
			FormatErrFieldName:  func(i any) string { return fmt.Sprint(i) + "=" },
			FormatErrFieldValue: func(i any) string { return logfmtValue(text(i)) },
		}
	default:
		return zerolog.Logger{}, fmt.Errorf("unknown log format %q (logfmt, json)", format)
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger(), nil
}

// text renders a field value; raw JSON (what zerolog's slog bridge hands
// over for booleans and numbers) as its text, not as a byte list.
func text(i any) string {
	switch v := i.(type) {
	case []byte:
		return string(v)
	case json.RawMessage:
		return string(v)
	}
	return fmt.Sprint(i)
}

func logfmtValue(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return strconv.Quote(s)
	}
	return s
}
