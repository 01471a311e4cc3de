package web

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store"
)

// TestKeySetLoadedReasons checks the rotation counter's rule for changes seen
// in the store: the reason read from two consecutive key sets, the first set
// a baseline, and a change this process made (Rotated) counted once.
func TestKeySetLoadedReasons(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	planned := t0.Add(24 * time.Hour)
	set := func(active string, keys ...rotation.Key) *rotation.Snapshot {
		return &rotation.Snapshot{Keys: keys, Signing: rotation.SigningKey{KID: active}}
	}
	key := func(kid string, st store.KeyState, activate time.Time) rotation.Key {
		return rotation.Key{KID: kid, State: st, ActivateAt: activate}
	}
	before := set("a", key("a", store.KeyActive, t0), key("b", store.KeyNext, planned))
	cases := []struct {
		name  string
		after *rotation.Snapshot
		want  rotation.Reason
	}{
		{"next activated on schedule", set("b", key("b", store.KeyActive, planned.Add(time.Second)), key("a", store.KeyRetired, t0)), rotation.ReasonScheduled},
		{"next activated early", set("b", key("b", store.KeyActive, t0.Add(time.Hour)), key("a", store.KeyRetired, t0)), rotation.ReasonManual},
		{"active revoked", set("b", key("b", store.KeyActive, t0.Add(time.Hour)), key("a", store.KeyRevoked, t0)), rotation.ReasonRevocation},
		{"a key never seen", set("c", key("c", store.KeyActive, t0.Add(time.Hour)), key("a", store.KeyRetired, t0)), ReasonObserved},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry(), func() *rotation.Snapshot { return nil }, time.Now)
			m.KeySetLoaded(before) // the baseline
			m.KeySetLoaded(before) // no change
			m.KeySetLoaded(c.after)
			if got := value(m.rotations.WithLabelValues(string(c.want))); got != 1 {
				t.Errorf("rotations{reason=%q} = %v, want 1", c.want, got)
			}
			if got := len(collect(m.rotations)); got != 5 {
				t.Errorf("%d reason series, want the 5 fixed ones", got)
			}
			total := 0.0
			for _, r := range []string{"initial", "scheduled", "manual", "revocation", "observed"} {
				total += value(m.rotations.WithLabelValues(r))
			}
			if total != 1 {
				t.Errorf("%v rotations counted, want 1", total)
			}
		})
	}

	t.Run("own rotation counted once", func(t *testing.T) {
		m := NewMetrics(prometheus.NewRegistry(), func() *rotation.Snapshot { return nil }, time.Now)
		m.Rotated(rotation.ReasonInitial)
		m.KeySetLoaded(before)
		m.Rotated(rotation.ReasonManual)
		m.KeySetLoaded(cases[0].after)
		for r, want := range map[string]float64{"initial": 1, "manual": 1, "scheduled": 0} {
			if got := value(m.rotations.WithLabelValues(r)); got != want {
				t.Errorf("rotations{reason=%q} = %v, want %v", r, got, want)
			}
		}
	})
}

// TestLabelsBounded: grant and error labels come from fixed sets whatever the
// request says.
func TestLabelsBounded(t *testing.T) {
	for in, want := range map[string]string{"password": "password", "urn:ietf:params:oauth:grant-type:jwt-bearer": "jwt_bearer",
		"": "other", "urn:evil:" + strings.Repeat("x", 100): "other"} {
		if got := grantLabel(in); got != want {
			t.Errorf("grantLabel(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"invalid_grant": "invalid_grant", "server_error": "server_error", "made_up": "other", "": "other"} {
		if got := errorLabel(in); got != want {
			t.Errorf("errorLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func value(c prometheus.Counter) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		panic(err)
	}
	return d.GetCounter().GetValue()
}

func collect(c prometheus.Collector) []prometheus.Metric {
	ch := make(chan prometheus.Metric, 100)
	c.Collect(ch)
	close(ch)
	var out []prometheus.Metric
	for m := range ch {
		out = append(out, m)
	}
	return out
}
