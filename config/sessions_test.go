package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/config"
)

func TestSessionSettings(t *testing.T) {
	c, err := config.Load(write(t, ""), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sessions.IdleTimeout != time.Hour || c.Sessions.AbsoluteTimeout != 24*time.Hour {
		t.Errorf("default sessions %+v, want 1h idle, 24h absolute", c.Sessions)
	}
	c, err = config.Load(write(t, "sessions:\n  idle_timeout: 15m\n  absolute_timeout: 8h\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sessions.IdleTimeout != 15*time.Minute || c.Sessions.AbsoluteTimeout != 8*time.Hour {
		t.Errorf("sessions %+v, want 15m idle, 8h absolute", c.Sessions)
	}
	for file, want := range map[string]string{
		"sessions:\n  idle_timeout: 0s\n":                         "sessions.idle_timeout",
		"sessions:\n  idle_timeout: 2h\n  absolute_timeout: 1h\n": "sessions.absolute_timeout: must be at least sessions.idle_timeout",
		"sessions:\n  absolute_timeout: -1h\n":                    "sessions.absolute_timeout",
		"sessions:\n  idle_timeout: forever\n":                    "sessions.idle_timeout",
	} {
		if _, err := config.Load(write(t, file), env(nil)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want it to mention %q", file, err, want)
		}
	}
}
