"""Stagewatch Grafana dashboards as code. ``python -m grafana.build`` regenerates grafana/dashboards/*.json."""
