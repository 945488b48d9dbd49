"""What every qroam testbed shares: `make run` (scripts/testbed.py), `make
bench` (scripts/bench.py), the compose runner (scripts/compose_netns.py
with compose_scenario.py) and the integration tests
(tests/integration/harness.py).

  proc     a daemon's process: its log file, its output lines, start-up
           and problem lines, the ports it listens on, a clean stop;
           time-stamped lines of a runner on the terminal
  layout   free loopback ports, the test PKI (scripts/mkpki.sh), the
           topology and the daemons' configuration files
  stores   read-only SQLite queries on the daemons' stores, the crossings
           a vehicle journals, fleet VINs, medians
  admin    GET on an admin endpoint, the Prometheus text of /metrics
  promconf a Prometheus scrape configuration of the admin endpoints and
           the command line of a Prometheus server
"""
