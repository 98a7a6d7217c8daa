package web

import (
	"net/http"
	"sort"
)

// checksDoc is the data of GET /api/v1/checks.
type checksDoc struct {
	Checks []CheckStatus `json:"checks"`
	// Measurement and Nodes come from a HealthSource.
	Measurement *MeasurementStatus `json:"measurement,omitempty"`
	Nodes       []NodeStatus       `json:"nodes,omitempty"`
}

// alertsDoc is the data of GET /api/v1/alerts.
type alertsDoc struct {
	Alerts []AlertStatus `json:"alerts"`
}

func (st *Status) apiChecks(w http.ResponseWriter, r *http.Request) {
	// A copy: the source's slice may be shared with other readers.
	list := append([]CheckStatus{}, st.o.Source.Checks(r.Context())...)
	for i := range list {
		c := &list[i]
		c.LastReason = st.clean(c.LastReason)
		c.Labels = st.redactMap(c.Labels)
		if c.Windows == nil {
			c.Windows = []WindowStatus{}
		}
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].Target < list[j].Target })
	doc := checksDoc{Checks: list}
	if hs, ok := st.o.Source.(HealthSource); ok {
		m := hs.Measurement(r.Context())
		doc.Measurement, doc.Nodes = &m, hs.Nodes(r.Context())
	}
	writeAPI(w, st.o.Logger, http.StatusOK, apiResponse{Status: "success", Data: doc})
}

func (st *Status) apiAlerts(w http.ResponseWriter, r *http.Request) {
	list := append([]AlertStatus{}, st.o.Source.Alerts(r.Context())...)
	for i := range list {
		a := &list[i]
		a.Labels = st.redactMap(a.Labels)
		a.Annotations = st.redactMap(a.Annotations)
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].Key < list[j].Key })
	writeAPI(w, st.o.Logger, http.StatusOK, apiResponse{Status: "success", Data: alertsDoc{Alerts: list}})
}

// redactMap returns a scrubbed copy of m (never nil, so JSON shows {}).
func (st *Status) redactMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = st.clean(v)
	}
	return out
}
