"""The dask path's speed beside the numpy path's on one machine, for the lab book.

``python tools/dask_numbers.py --side 2048 --repeats 2``: MP/s of ``wne.denoise`` on a
``side²`` uint16 frame as a numpy array, as a dask array (threads) and on a ``LocalCluster``
(one process per core, one thread each), with the largest difference from the numpy result.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    """Prints one line per engine: seconds per repeat, MP/s, max |difference|."""
    import dask.array as da
    from distributed import Client, LocalCluster

    from wne.native import denoise, load_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--side", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--model", default="dncnn-wne-s25")
    args = p.parse_args()
    x = (np.random.default_rng(0).random((args.side, args.side)) * 4000).astype(np.uint16)
    net, mp = load_model(args.model, "cpu"), args.side**2 / 1e6
    ref = denoise(x, net)

    def timed(name: str, fn: object) -> None:
        times, got = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            got = fn()
            times.append(time.perf_counter() - start)
        diff = np.abs(got.astype(float) - ref).max()
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(f"{name}: {runs} s, {mp / min(times):.3f} MP/s, max diff {diff:g}")

    chunks = 1024
    timed("numpy", lambda: denoise(x, net))
    timed("dask threads", lambda: denoise(da.from_array(x, chunks=chunks), net).compute())
    threads = torch.get_num_threads()
    with LocalCluster(n_workers=threads, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster):  # fmt: skip
        timed("dask LocalCluster", lambda: denoise(da.from_array(x, chunks=chunks), net).compute())


if __name__ == "__main__":
    main()
