package web

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store"
)

// Metrics are Keygate's Prometheus collectors, registered on a registry the
// caller owns (no global state, so tests can run servers side by side).
type Metrics struct {
	rotations *prometheus.CounterVec
	jwks      *prometheus.CounterVec
	jwksCodes map[int]prometheus.Counter // pre-resolved, so counting costs no label lookup
}

// NewMetrics registers the collectors on reg. keys supplies the current snapshot
// for the key gauges; now is the clock.
func NewMetrics(reg *prometheus.Registry, keys func() *rotation.Snapshot, now func() time.Time) *Metrics {
	m := &Metrics{
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_key_rotations_total",
			Help: "Changes of the signing key made by this process, by reason (initial, scheduled, manual, revocation).",
		}, []string{"reason"}),
		jwks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_jwks_requests_total",
			Help: "Requests for the JWKS, by status code (304 means a cache revalidated).",
		}, []string{"code"}),
		jwksCodes: map[int]prometheus.Counter{},
	}
	for _, code := range []int{200, 304, 405, 503} {
		m.jwksCodes[code] = m.jwks.WithLabelValues(strconv.Itoa(code))
	}
	for _, r := range []rotation.Reason{rotation.ReasonInitial, rotation.ReasonScheduled, rotation.ReasonManual, rotation.ReasonRevocation} {
		m.rotations.WithLabelValues(string(r))
	}
	keyAge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "keygate_signing_key_age_seconds",
		Help: "Seconds since the current signing key became active.",
	}, func() float64 {
		s := keys()
		if s == nil {
			return 0
		}
		if k, ok := s.Find(s.Signing.KID); ok {
			return now().Sub(k.ActivateAt).Seconds()
		}
		return 0
	})
	reg.MustRegister(m.rotations, m.jwks, keyAge,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, st := range []store.KeyState{store.KeyNext, store.KeyActive, store.KeyRetired, store.KeyRevoked} {
		st := st
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "keygate_keys",
			Help:        "Signing keys in the key set, by state.",
			ConstLabels: prometheus.Labels{"state": string(st)},
		}, func() float64 {
			s := keys()
			if s == nil {
				return 0
			}
			n := 0
			for _, k := range s.Keys {
				if k.State == st {
					n++
				}
			}
			return float64(n)
		}))
	}
	return m
}

// Rotated counts a signing-key change; pass it as rotation.Config.OnRotate.
func (m *Metrics) Rotated(r rotation.Reason) { m.rotations.WithLabelValues(string(r)).Inc() }

// JWKSServed counts one JWKS response; pass it to the jwks publisher.
func (m *Metrics) JWKSServed(status int) {
	if c, ok := m.jwksCodes[status]; ok {
		c.Inc()
		return
	}
	m.jwks.WithLabelValues(strconv.Itoa(status)).Inc()
}
