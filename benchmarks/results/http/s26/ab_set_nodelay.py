import os, sys, statistics, time
sys.path.insert(0, "/work/main/benchmarks")
from http_bench import free_port, start_server, stop_server, run_wrk_counted, server_cpu
res = {"old": [], "new": []}
for r in range(9):
    for name in ("old", "new"):
        if name == "old": os.environ["PYTHONPATH"] = "/tmp/pkg"
        else: os.environ.pop("PYTHONPATH", None)
        port = free_port()
        p = start_server("ioloop_c-set", port, 1, cpu=0)
        run_wrk_counted(port, 1, 50, 1, 1)
        c0 = server_cpu(p.pid)
        rps, n = run_wrk_counted(port, 3, 50, 1, 1)
        cpu = (server_cpu(p.pid) - c0) / n * 1e6
        stop_server(p)
        res[name].append((rps, cpu))
        print(r, name, f"{rps:.0f} req/s {cpu:.1f} us/req", flush=True)
for k, v in res.items():
    print(k, "median req/s", statistics.median(x[0] for x in v), "median us/req", statistics.median(x[1] for x in v))
print("new/old by run:", statistics.median(b[0]/a[0] for a, b in zip(res["old"], res["new"])), "cpu old/new:", statistics.median(a[1]/b[1] for a, b in zip(res["old"], res["new"])))
