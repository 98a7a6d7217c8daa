package probeutil

import "net/url"

// URLHost is the host of the URL raw, without port or brackets, as written
// (not lower-cased); "" when raw is empty or not a URL.
func URLHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
