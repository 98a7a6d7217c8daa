package metrics

// DurationBuckets exposes durationBuckets to the external tests
// (package metrics_test).
var DurationBuckets = durationBuckets
