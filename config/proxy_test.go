package config_test

import (
	"strings"
	"testing"

	"github.com/keygate/keygate/config"
)

func TestTrustedProxiesAndMetricsListen(t *testing.T) {
	c, err := config.Load(write(t, "server:\n  trusted_proxies: [10.0.0.0/8, 192.0.2.7, \"2001:db8::/32\"]\n  metrics_listen: 127.0.0.1:9090\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	nets, err := c.Server.TrustedProxyNets()
	if err != nil || len(nets) != 3 || nets[0].String() != "10.0.0.0/8" || nets[1].String() != "192.0.2.7/32" || nets[2].String() != "2001:db8::/32" {
		t.Errorf("trusted proxies %v, %v", nets, err)
	}
	if c.Server.MetricsListen != "127.0.0.1:9090" {
		t.Errorf("metrics_listen %q", c.Server.MetricsListen)
	}

	// The defaults: no proxy trusted, /metrics on the main listener.
	d, err := config.Load("", env(nil))
	if err != nil || len(d.Server.TrustedProxies) != 0 || d.Server.MetricsListen != "" {
		t.Errorf("defaults: %v %q %v", d.Server.TrustedProxies, d.Server.MetricsListen, err)
	}

	// The environment, comma-separated.
	e, err := config.Load("", env(map[string]string{"KEYGATE_TRUSTED_PROXIES": " 10.0.0.0/8, ::1 ,", "KEYGATE_METRICS_LISTEN": ":9090"}))
	if err != nil || strings.Join(e.Server.TrustedProxies, "|") != "10.0.0.0/8|::1" || e.Server.MetricsListen != ":9090" {
		t.Errorf("environment: %q %q %v", e.Server.TrustedProxies, e.Server.MetricsListen, err)
	}

	// Two ephemeral ports are two listeners.
	if _, err := config.Load("", env(map[string]string{"KEYGATE_LISTEN": "127.0.0.1:0", "KEYGATE_METRICS_LISTEN": "127.0.0.1:0"})); err != nil {
		t.Errorf("listen and metrics_listen both on port 0: %v", err)
	}

	for _, bad := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"KEYGATE_TRUSTED_PROXIES": "10.0.0.0/33"}, "server.trusted_proxies[0]"},
		{map[string]string{"KEYGATE_TRUSTED_PROXIES": "10.0.0.0/8,proxy.internal"}, "server.trusted_proxies[1]"},
		{map[string]string{"KEYGATE_METRICS_LISTEN": "9090"}, "server.metrics_listen"},
		{map[string]string{"KEYGATE_METRICS_LISTEN": "127.0.0.1:8080"}, "server.metrics_listen"},
	} {
		if _, err := config.Load("", env(bad.env)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: %v, want an error naming %s", bad.env, err, bad.want)
		}
	}
}
