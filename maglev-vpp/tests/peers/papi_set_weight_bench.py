"""lb_as_set_weight calls per second through vpp_papi (synchronous calls).

usage: python papi_set_weight_bench.py API_SOCKET [N]

The comparison point for maglev-vpp's client bench (docs/performance.md):
same message, same VIP and AS, same simulator.
"""
import glob
import os
import sys
import time

from vpp_papi import VPPApiClient

HERE = os.path.dirname(os.path.abspath(__file__))
API_DIR = os.path.join(HERE, '..', '..', '..', '..', 'shared', 'vpp-api')

sock = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
vpp = VPPApiClient(apifiles=glob.glob(os.path.join(API_DIR, '*.api.json')), server_address=sock)
vpp.connect('papi-bench')
a = vpp.api
a.lb_add_del_vip_v2(pfx='192.0.2.1/32', protocol=6, port=80, encap=0, new_flows_table_length=1024, is_del=False)
a.lb_add_del_as_v2(pfx='192.0.2.1/32', protocol=6, port=80, as_address='10.0.0.1', weight=100, is_del=False, is_flush=False)
best = 0.0
for _ in range(3):
    start = time.perf_counter()
    for i in range(n):
        r = a.lb_as_set_weight(pfx='192.0.2.1/32', protocol=6, port=80, as_address='10.0.0.1', weight=i % 101, is_flush=False)
        assert r.retval == 0, r
    rate = n / (time.perf_counter() - start)
    best = max(best, rate)
    print(f'{n} calls: {rate:.0f} calls/s')
print(f'best: {best:.0f} calls/s')
vpp.disconnect()
