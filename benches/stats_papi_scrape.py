#!/usr/bin/env python3
"""vpp_papi doing the same scrape as maglev's `Scrape`, for docs/performance.md.

Usage: stats_papi_scrape.py SOCKET VIP_FIRST VIP_COUNT ROUTE_FIRST ROUTE_COUNT [SECONDS]

Connects VPPStats to SOCKET and repeats one scrape: the four LB counters
summed over threads for VIP pool indexes VIP_FIRST.., and /net/route/to
(packets, bytes) summed over threads for route stats indexes ROUTE_FIRST..
(ROUTE_COUNT 0: no routes). vpp_papi has no column read, so each scrape
copies the whole vectors, which is how vpp_papi is used. Prints one JSON
line: per-scrape mean and min in microseconds, and checksums of the values
so the caller can check both readers saw the same counters.
"""
import json
import sys
import time

from vpp_papi.vpp_stats import VPPStats

LB = [
    "packet from existing sessions",
    "first session packet",
    "untracked packet",
    "no server configured",
]


def main():
    sock = sys.argv[1]
    vips = range(int(sys.argv[2]), int(sys.argv[2]) + int(sys.argv[3]))
    routes = range(int(sys.argv[4]), int(sys.argv[4]) + int(sys.argv[5]))
    budget = float(sys.argv[6]) if len(sys.argv) > 6 else 2.0
    s = VPPStats(socketname=sock)
    s.connect()

    def scrape():
        lb_sum = 0
        if vips:
            counters = [s[name] for name in LB]
            for c in counters:
                for v in vips:
                    lb_sum += sum(row[v] for row in c)
        pk = by = 0
        if routes:
            rt = s["/net/route/to"]
            for r in routes:
                pk += sum(row[r][0] for row in rt)
                by += sum(row[r][1] for row in rt)
        return lb_sum, pk, by

    result = scrape()
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget and len(times) < 1000):
        t0 = time.perf_counter()
        scrape()
        times.append(time.perf_counter() - t0)
    s.disconnect()
    print(json.dumps({
        "iterations": len(times),
        "mean_us": sum(times) / len(times) * 1e6,
        "min_us": min(times) * 1e6,
        "lb_sum": result[0],
        "route_packets": result[1],
        "route_bytes": result[2],
    }))


if __name__ == "__main__":
    main()
