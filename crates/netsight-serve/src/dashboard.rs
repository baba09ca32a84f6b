//! A Grafana dashboard over the exported series: a findings panel on top, then
//! one row per USE layer (utilization, saturation, errors), with `instance` and
//! `interface` variables. Rates of byte counters are shown as bits per second
//! (Grafana unit "bps") and labelled so; sizes as bytes; ratios as percent.

use serde_json::{json, Value};

/// One panel: title, Grafana unit, PromQL targets (expression, legend).
struct Panel {
    title: &'static str,
    unit: &'static str,
    targets: &'static [(&'static str, &'static str)],
}

/// The rows, bottom of the stack up: (row title, panels).
const ROWS: &[(&str, &[Panel])] = &[
    ("NIC: utilization, saturation, errors", &[
        Panel { title: "Throughput (bits/s, from byte counters x 8)", unit: "bps", targets: &[
            ("8 * rate(netsight_link_rx_bytes_total{instance=~\"$instance\", interface=~\"$interface\"}[$__rate_interval])", "{{interface}} receive"),
            ("8 * rate(netsight_link_tx_bytes_total{instance=~\"$instance\", interface=~\"$interface\"}[$__rate_interval])", "{{interface}} transmit"),
        ] },
        Panel { title: "Packets (packets/s)", unit: "pps", targets: &[
            ("rate(netsight_link_rx_packets_total{instance=~\"$instance\", interface=~\"$interface\"}[$__rate_interval])", "{{interface}} receive"),
            ("rate(netsight_link_tx_packets_total{instance=~\"$instance\", interface=~\"$interface\"}[$__rate_interval])", "{{interface}} transmit"),
        ] },
        Panel { title: "Drops and errors (packets/s)", unit: "pps", targets: &[
            ("rate(netsight_link_rx_dropped_total{instance=~\"$instance\", interface=~\"$interface\"}[$__rate_interval])", "{{interface}} rx dropped"),
            ("rate(netsight_link_tx_dropped_total{instance=~\"$instance\", interface=~\"$interface\"}[$__rate_interval])", "{{interface}} tx dropped"),
            ("rate(netsight_link_rx_missed_errors_total{instance=~\"$instance\", interface=~\"$interface\"}[$__rate_interval])", "{{interface}} rx missed"),
            ("rate(netsight_link_rx_errors_total{instance=~\"$instance\", interface=~\"$interface\"}[$__rate_interval])", "{{interface}} rx errors"),
        ] },
    ]),
    ("Softirq: per-CPU receive processing", &[
        Panel { title: "Backlog drops and time squeezes (events/s)", unit: "ops", targets: &[
            ("rate(netsight_softnet_dropped_total{instance=~\"$instance\"}[$__rate_interval])", "cpu {{cpu}} dropped"),
            ("rate(netsight_softnet_time_squeeze_total{instance=~\"$instance\"}[$__rate_interval])", "cpu {{cpu}} time squeeze"),
        ] },
    ]),
    ("Qdisc: queues and their drops", &[
        Panel { title: "Qdisc drops (packets/s)", unit: "pps", targets: &[
            ("rate(netsight_qdisc_drops_total{instance=~\"$instance\", interface=~\"$interface\"}[$__rate_interval])", "{{interface}} {{kind}} {{handle}}"),
        ] },
        Panel { title: "Qdisc backlog (bytes queued)", unit: "bytes", targets: &[
            ("netsight_qdisc_backlog_bytes{instance=~\"$instance\", interface=~\"$interface\"}", "{{interface}} {{kind}} {{handle}}"),
        ] },
    ]),
    ("IP", &[
        Panel { title: "Datagrams (packets/s)", unit: "pps", targets: &[
            ("rate(netsight_ip_in_receives_total{instance=~\"$instance\"}[$__rate_interval])", "received"),
            ("rate(netsight_ip_out_requests_total{instance=~\"$instance\"}[$__rate_interval])", "sent"),
            ("rate(netsight_ip_out_no_routes_total{instance=~\"$instance\"}[$__rate_interval])", "no route"),
            ("rate(netsight_ip_frag_fails_total{instance=~\"$instance\"}[$__rate_interval])", "fragmentation failed"),
        ] },
    ]),
    ("TCP", &[
        Panel { title: "Retransmitted segments (percent of segments sent)", unit: "percent", targets: &[
            ("100 * rate(netsight_tcp_retrans_segs_total{instance=~\"$instance\"}[$__rate_interval]) / clamp_min(rate(netsight_tcp_out_segs_total{instance=~\"$instance\"}[$__rate_interval]), 1)", "retransmitted"),
        ] },
        Panel { title: "Accept queue overflows and connection failures (events/s)", unit: "ops", targets: &[
            ("rate(netsight_tcp_ext_listen_overflows_total{instance=~\"$instance\"}[$__rate_interval])", "listen overflows"),
            ("rate(netsight_tcp_attempt_fails_total{instance=~\"$instance\"}[$__rate_interval])", "connect attempts failed"),
            ("rate(netsight_tcp_ext_tcp_timeouts_total{instance=~\"$instance\"}[$__rate_interval])", "retransmission timeouts"),
        ] },
    ]),
    ("UDP", &[
        Panel { title: "UDP datagrams and receive-buffer drops (datagrams/s)", unit: "pps", targets: &[
            ("rate(netsight_udp_in_datagrams_total{instance=~\"$instance\"}[$__rate_interval])", "received"),
            ("rate(netsight_udp_rcvbuf_errors_total{instance=~\"$instance\"}[$__rate_interval])", "dropped: receive buffer full"),
        ] },
    ]),
    ("Sockets", &[
        Panel { title: "Sockets by state", unit: "short", targets: &[
            ("netsight_sockets{instance=~\"$instance\"}", "{{protocol}} {{state}}"),
        ] },
        Panel { title: "Accept queue fill (percent of the listener's backlog)", unit: "percent", targets: &[
            ("100 * netsight_listener_accept_queue_connections{instance=~\"$instance\"} / clamp_min(netsight_listener_backlog_connections{instance=~\"$instance\"}, 1)", "{{address}}:{{port}} {{process}}"),
        ] },
    ]),
    ("Conntrack", &[
        Panel { title: "Connection-tracking table fill (percent)", unit: "percent", targets: &[
            ("100 * netsight_conntrack_entries{instance=~\"$instance\"} / netsight_conntrack_entries_limit{instance=~\"$instance\"}", "fill"),
        ] },
    ]),
];

fn timeseries(id: &mut u64, y: u64, x: u64, panel: &Panel) -> Value {
    *id += 1;
    let targets: Vec<Value> = panel
        .targets
        .iter()
        .enumerate()
        .map(|(i, (expr, legend))| {
            json!({"refId": char::from(b'A' + i as u8).to_string(), "expr": expr, "legendFormat": legend, "datasource": {"type": "prometheus", "uid": "${datasource}"}})
        })
        .collect();
    json!({
        "id": *id,
        "type": "timeseries",
        "title": panel.title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "targets": targets,
    })
}

/// The dashboard's JSON (import it in Grafana, or provision it).
pub fn dashboard() -> Value {
    let mut id = 0u64;
    let mut panels = Vec::new();
    id += 1;
    panels.push(json!({
        "id": id,
        "type": "table",
        "title": "Findings now (doctor's rules over the sampler's window)",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 24, "x": 0, "y": 0},
        "targets": [{"refId": "A", "expr": "netsight_finding{instance=~\"$instance\"} == 1", "format": "table", "instant": true, "datasource": {"type": "prometheus", "uid": "${datasource}"}}],
        "transformations": [{"id": "organize", "options": {"excludeByName": {"Time": true, "Value": true, "__name__": true, "job": true}}}],
        "fieldConfig": {"defaults": {"unit": "none"}, "overrides": []},
    }));
    let mut y = 8;
    for (title, row) in ROWS {
        id += 1;
        panels.push(json!({"id": id, "type": "row", "title": title, "collapsed": false, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []}));
        y += 1;
        for (i, panel) in row.iter().enumerate() {
            panels.push(timeseries(
                &mut id,
                y + 8 * (i as u64 / 2),
                12 * (i as u64 % 2),
                panel,
            ));
        }
        y += 8 * (row.len() as u64).div_ceil(2);
    }
    json!({
        "title": "netsight: network USE and findings",
        "uid": "netsight",
        "schemaVersion": 39,
        "editable": true,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "tags": ["netsight", "network"],
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
            {"name": "instance", "type": "query", "label": "Instance", "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": {"query": "label_values(netsight_samples_total, instance)", "refId": "instance"}, "refresh": 2, "multi": true, "includeAll": true},
            {"name": "interface", "type": "query", "label": "Interface", "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": {"query": "label_values(netsight_link_rx_bytes_total{instance=~\"$instance\"}, interface)", "refId": "interface"}, "refresh": 2, "multi": true, "includeAll": true},
        ]},
        "panels": panels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_per_layer_units_on_every_panel_and_both_variables() {
        let d = dashboard();
        let panels = d["panels"].as_array().unwrap();
        let rows = panels.iter().filter(|p| p["type"] == "row").count();
        assert_eq!(rows, ROWS.len());
        assert_eq!(panels[0]["type"], "table");
        for p in panels.iter().filter(|p| p["type"] == "timeseries") {
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap();
            assert!(!unit.is_empty(), "{}", p["title"]);
            // A bits-per-second panel says so, and multiplies bytes by 8.
            if unit == "bps" {
                assert!(p["title"].as_str().unwrap().contains("bits/s"));
                assert!(p["targets"][0]["expr"]
                    .as_str()
                    .unwrap()
                    .starts_with("8 * "));
            }
        }
        let names: Vec<&str> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"instance") && names.contains(&"interface"));
        let ids: std::collections::HashSet<u64> =
            panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
        assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    }
}
