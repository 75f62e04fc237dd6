package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics.
type metrics struct {
	requests *prometheus.CounterVec   // route, method, status
	latency  *prometheus.HistogramVec // route, method
	panics   prometheus.Counter
	handler  http.Handler
}

func newMetrics(reg *prometheus.Registry, hub *Hub) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "boxoffice_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "boxoffice_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "boxoffice_http_panics_total",
			Help: "Handler panics turned into 500 answers.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.panics, hubCollector{hub}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m, nil
}

// middleware counts and times each request under its chi route pattern, so
// that ids in paths never become label values.
func (m *metrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() {
			route := "unmatched"
			if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
				route = rc.RoutePattern()
			}
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			m.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
			m.latency.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(ww, r)
	})
}

// hubCollector exports what the seat-map hub knows, read at scrape time.
type hubCollector struct{ hub *Hub }

var (
	seatsDesc = prometheus.NewDesc("boxoffice_event_seats",
		"Seats of an event by status, as the seat map shows them.", []string{"event", "status"}, nil)
	versionDesc = prometheus.NewDesc("boxoffice_event_version",
		"Sequence number of the last durable record the seat map shows.", []string{"event"}, nil)
	unavailableDesc = prometheus.NewDesc("boxoffice_events_unavailable",
		"Events not served because their journal failed verification.", nil, nil)
	rendersDesc = prometheus.NewDesc("boxoffice_seat_map_renders_total",
		"Seat-map bodies encoded (each serves many requests).", nil, nil)
	staleDesc = prometheus.NewDesc("boxoffice_seat_feed_stale_batches_total",
		"Seat-feed batches at or below the version already shown, ignored.", nil, nil)
	badSeatDesc = prometheus.NewDesc("boxoffice_seat_feed_bad_seats_total",
		"Seat-feed changes naming a seat outside the plan, ignored.", nil, nil)
)

func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{seatsDesc, versionDesc, unavailableDesc, rendersDesc, staleDesc, badSeatDesc} {
		ch <- d
	}
}

func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.hub
	for _, info := range h.eventList() {
		for status, n := range map[string]int{
			"available": info.Counts.Available, "reserved": info.Counts.Reserved,
			"booked": info.Counts.Booked, "blocked": info.Counts.Blocked,
		} {
			ch <- prometheus.MustNewConstMetric(seatsDesc, prometheus.GaugeValue, float64(n), info.ID, status)
		}
		ch <- prometheus.MustNewConstMetric(versionDesc, prometheus.GaugeValue, float64(info.Version), info.ID)
	}
	ch <- prometheus.MustNewConstMetric(unavailableDesc, prometheus.GaugeValue, float64(h.unavailableCount()))
	ch <- prometheus.MustNewConstMetric(rendersDesc, prometheus.CounterValue, float64(h.renders.Load()))
	ch <- prometheus.MustNewConstMetric(staleDesc, prometheus.CounterValue, float64(h.staleApplies.Load()))
	ch <- prometheus.MustNewConstMetric(badSeatDesc, prometheus.CounterValue, float64(h.badSeats.Load()))
}
