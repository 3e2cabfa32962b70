package metrics

import "github.com/prometheus/client_golang/prometheus"

// FleetStats is what a fleet's gateway reports of its etcd.
type FleetStats struct {
	Connected        bool
	ConfigRevision   int64 // the config revision served
	RejectedRevision int64 // a newer one this gateway refused, 0 when none
}

// SetFleetStats registers the fleet's gauges, read from stats at each
// scrape: only a gateway serving a fleet's config has them.
func (m *Metrics) SetFleetStats(stats func() FleetStats) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wasmgate_fleet_connected",
			Help: "1 while the fleet's etcd answers, 0 while the gateway serves its last config without it."},
			func() float64 {
				if stats().Connected {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wasmgate_fleet_config_revision",
			Help: "The etcd revision of the fleet config this gateway serves."},
			func() float64 { return float64(stats().ConfigRevision) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wasmgate_fleet_rejected_revision",
			Help: "The etcd revision of a newer fleet config this gateway refused (0: none); GET /fleet says why."},
			func() float64 { return float64(stats().RejectedRevision) }),
	)
}
