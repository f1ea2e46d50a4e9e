"""Side-by-side peers for diff4steer (run through benches/peers/run.sh).

Loads the workload exported by `diff4steer-peers export`, checks that every peer computes what we
compute (the same denoiser and sampler with the same weights and noise in JAX and PyTorch; the same
neighbours in faiss), then times ours and each peer alternately, repeat after repeat, in this one
process tree, and prints medians and speed-ups (peer time / our time: above 1 = ours is faster).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def load(d, name):
    return np.load(os.path.join(d, name + ".npy"))


# ---------------------------------------------------------------- the network, written once per
# framework from the same formulas (diff4steer-models: prior.rs, network/*.rs, precond.rs).


def make_forward(xp, p, m, silu, layer_norm, concat):
    """D(x, σ, q) for one row per sample: x [R, T], sigma [R, 1], q_eff [R, Q] (q or ∅)."""
    sd = np.float32(m["sigma_data"])
    depth = m["depth"]

    def linear(x, name):
        return x @ p[name + ".weight"] + p[name + ".bias"]

    def forward(x, sigma, q_eff):
        total = sigma * sigma + sd * sd
        root = xp.sqrt(total)
        c_skip, c_out, c_in = (sd * sd) / total, sigma * sd / root, 1.0 / root
        angle = (xp.log(sigma) * 0.25) * p["frequencies"]
        features = concat([xp.sin(angle), xp.cos(angle)])
        vector = linear(silu(linear(features, "noise_in")), "noise_out")
        vector = silu(vector + linear(q_eff, "query_projection"))
        h = linear(c_in * x, "input")
        if "query_input.weight" in p:  # the query also enters the input layer (query_to_input)
            h = h + linear(q_eff, "query_input")
        for i in range(depth):
            b = f"blocks.{i}."
            y = linear(silu(layer_norm(h, b + "norm_in")), b + "linear_in")
            y = layer_norm(y, b + "norm_out")
            film = linear(vector, b + "film")
            w = film.shape[1] // 2
            y = y * (1.0 + film[:, :w]) + film[:, w:]
            h = h + linear(silu(y), b + "linear_out")
        out = linear(silu(layer_norm(h, "norm_out")), "output")
        return c_skip * x + c_out * out

    return forward


def make_sampler(xp, forward, m, p, concat_rows):
    """Heun (EDM Algorithm 1) with CFG (cond and ∅ rows in one batch) and a final denoise."""
    sigmas = [float(s) for s in m["sigmas"]]
    w = float(m["guidance"])
    k = m["seeds_per_query"]

    def sample(queries, noise):
        """queries [n, Q], noise [n·k, T]: n queries' k seeds each, in one batch per step."""
        x = noise * np.float32(sigmas[0])
        n = queries.shape[0]
        q_eff = concat_rows([xp.repeat(queries, k, 0),
                             xp.broadcast_to(p["null_query"].reshape(1, -1), (n * k, queries.shape[-1]))])

        def guided(x, s):
            sig = xp.full((2 * n * k, 1), np.float32(s))
            d = forward(concat_rows([x, x]), sig, q_eff)
            return d[:n * k] * np.float32(1 + w) + d[n * k:] * np.float32(-w)

        for s, s_next in zip(sigmas[:-2], sigmas[1:-1]):
            den = guided(x, s)
            d = (x - den) / np.float32(s)
            x_euler = x + d * np.float32(s_next - s)
            d_next = (x_euler - guided(x_euler, s_next)) / np.float32(s_next)
            x = x + (d + d_next) * np.float32(0.5 * (s_next - s))
        return guided(x, sigmas[-2])

    return sample


def jax_peer(p_np, m):
    import jax
    import jax.numpy as jnp
    p = {k: jnp.asarray(v) for k, v in p_np.items()}

    def layer_norm(x, name):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + 1e-5) * p[name + ".gamma"] + p[name + ".beta"]

    forward = make_forward(jnp, p, m, jax.nn.silu, layer_norm, lambda xs: jnp.concatenate(xs, -1))
    sample = make_sampler(jnp, forward, m, p, lambda xs: jnp.concatenate(xs, 0))
    fwd = jax.jit(forward)
    smp = jax.jit(sample)
    return {
        "forward": lambda x, s, q: fwd(jnp.asarray(x), jnp.asarray(s), jnp.asarray(q)).block_until_ready(),
        "sample": lambda q, n: smp(jnp.asarray(q), jnp.asarray(n)).block_until_ready(),
        "name": f"JAX {jax.__version__} jit",
    }


def torch_peer(p_np, m):
    import torch
    torch.set_num_threads(os.cpu_count())
    p = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in p_np.items()}

    def layer_norm(x, name):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], p[name + ".gamma"], p[name + ".beta"], 1e-5)

    forward = make_forward(torch, p, m, torch.nn.functional.silu, layer_norm, lambda xs: torch.cat(xs, -1))

    class TorchXp:  # the two array functions the sampler needs, in torch
        @staticmethod
        def broadcast_to(a, shape):
            return a.reshape(1, -1).expand(*shape)

        @staticmethod
        def repeat(a, count, axis):
            return torch.repeat_interleave(a, count, dim=axis)

        @staticmethod
        def full(shape, v):
            return torch.full(shape, float(v))

    sample = make_sampler(TorchXp, forward, m, p, lambda xs: torch.cat(xs, 0))

    def run(f, *args):
        with torch.inference_mode():
            return f(*[torch.from_numpy(np.ascontiguousarray(a)) for a in args]).numpy()

    return {
        "forward": lambda x, s, q: run(forward, x, s, q),
        "sample": lambda q, n: run(sample, q, n),
        "name": f"PyTorch {torch.__version__} eager ({torch.get_num_threads()} threads)",
    }


# ---------------------------------------------------------------- ours, as a long-lived process.


class Ours:
    def __init__(self, binary, d):
        self.proc = subprocess.Popen([binary, "serve", "--dir", d], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        ready = json.loads(self.proc.stdout.readline())
        self.threads = ready["threads"]
        self.hnsw_build_s = ready["hnsw_build_s"]

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise RuntimeError(f"ours: {command}: {reply['error']}")
        return reply

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait()


def time_calls(fn, n):
    fn(0)
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i + 1)
        out.append((time.perf_counter() - t) * 1e3)
    return out


def qps_at_recall(curve, target):
    """Queries/s at recall `target` along one implementation's (recall, q/s) points, measured at
    increasing ef: linear between the two points that bracket it; None outside the curve."""
    points = sorted(curve)
    for (r0, q0), (r1, q1) in zip(points, points[1:]):
        if r0 <= target <= r1:
            return q0 if r1 == r0 else q0 + (q1 - q0) * (target - r0) / (r1 - r0)
    return None


def hnsw_equal_recall(ours, fh, hl, hq, recall, repeats):
    """Each HNSW's queries/s at equal recall@10: every implementation is timed (batched, all
    threads, alternating) over one grid of ef values, and its q/s at each target recall is read
    off its own recall-vs-q/s curve. Comparing at one ef instead favours whichever graph stops its
    search later (faiss spends more distances per ef than ours and hnswlib)."""
    grid = (10, 12, 14, 16, 20, 24, 32, 48, 64)
    n = hq.shape[0]
    ms = {}
    rec = {}
    for ef in grid:
        for _ in range(repeats):
            reply = ours.ask(f"hnsw {ef} 3")
            ms.setdefault(("ours HnswIndex", ef), []).extend(reply["ms"])
            rec[("ours HnswIndex", ef)] = reply["recall"]
            fh.hnsw.efSearch = ef
            ms.setdefault(("faiss IndexHNSWFlat", ef), []).extend(time_calls(lambda i: fh.search(hq, 10), 3))
            hl.set_ef(ef)
            ms.setdefault(("hnswlib", ef), []).extend(time_calls(lambda i: hl.knn_query(hq, k=10), 3))
        fh.hnsw.efSearch = ef
        rec[("faiss IndexHNSWFlat", ef)] = recall(fh.search(hq, 10)[1])
        hl.set_ef(ef)
        rec[("hnswlib", ef)] = recall(hl.knn_query(hq, k=10)[0])
    names = ("ours HnswIndex", "faiss IndexHNSWFlat", "hnswlib")
    curves = {name: [(rec[(name, ef)], n / statistics.median(ms[(name, ef)]) * 1e3) for ef in grid]
              for name in names}
    print("\nHNSW recall@10 and q/s per ef (batched):")
    for name in names:
        print(f"  {name}: " + ", ".join(f"ef {ef} {r:.4f} {q:,.0f}" for ef, (r, q) in zip(grid, curves[name])))
    print("\n| recall@10 | ours q/s | faiss q/s | hnswlib q/s | ours/faiss | ours/hnswlib |")
    print("|---:|---:|---:|---:|---:|---:|")
    table = []
    for target in (0.95, 0.97, 0.98, 0.99, 0.995, 0.999):
        # "—": the target lies outside that implementation's curve over this ef grid.
        o, f, h = (qps_at_recall(curves[name], target) for name in names)
        cell = lambda v: "—" if v is None else f"{v:,.0f}"
        ratio = lambda a, b: "—" if a is None or b is None else f"{a / b:.2f}×"
        print(f"| {target} | {cell(o)} | {cell(f)} | {cell(h)} | {ratio(o, f)} | {ratio(o, h)} |")
        table.append({"recall": target, "ours": o, "faiss": f, "hnswlib": h})
    return {"grid": list(grid), "curves": curves, "table": table}


def scaled_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1.0)))


def train_section(args, record, repeats):
    """Training steps/s of ours (`train-speed`: train_prior's CPU path) and of PyTorch
    (torch_prior.py: the same network, loss, AdamW, clipping and EMA on the same kind of data),
    each in a fresh process, alternately, at 512×4 and 256×3, batch 256 and 1024, on 1 and 2
    threads. Recorded as milliseconds per step."""
    torch_script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_prior.py")

    def steps_per_s(command, threads):
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])["steps_per_s"]

    for width, depth in ((512, 4), (256, 3)):
        for batch in (256, 1024):
            # About five seconds of timed steps for each at the speeds measured on 2 cores.
            steps = max(8, (40 if width == 512 else 120) * 256 // batch)
            shape = ["--width", str(width), "--depth", str(depth), "--batch", str(batch),
                     "--steps", str(steps), "--warmup", "3"]
            for threads in (1, 2):
                name = f"train{width}x{depth}b{batch}t{threads}"
                for _ in range(repeats):
                    ours = steps_per_s([args.ours, "train-speed", "--backend", "cpu"] + shape, threads)
                    record(f"{name}/ours train_prior (ms/step)", [1e3 / ours])
                    torch_rate = steps_per_s([sys.executable, torch_script, "train", "--device", "cpu",
                                              "--threads", str(threads)] + shape, threads)
                    record(f"{name}/PyTorch (ms/step)", [1e3 / torch_rate])
                print(f"{name} done", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sections", default="sgemm,sample,sample64,forward,flat,hnsw",
                    help="comma-separated; `train` (training steps/s, ~25 min) is not in the default")
    ap.add_argument("--json", default=None, help="write all measurements here")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    d = args.dir
    m = json.load(open(os.path.join(d, "manifest.json")))
    p = {t["name"]: load(os.path.join(d, "weights"), t["name"]).reshape(t["shape"]).astype(np.float32)
         for t in m["tensors"]}
    k, T, Q = m["seeds_per_query"], m["target_dim"], m["query_dim"]
    queries, noise = load(d, "queries"), load(d, "noise")
    nq = queries.shape[0]
    results = {"machine": os.uname().nodename, "cpus": os.cpu_count(), "manifest": {
        key: m[key] for key in ("width", "depth", "seeds_per_query", "guidance", "sampler")}}
    failures = []

    peers = [jax_peer(p, m), torch_peer(p, m)]
    print(f"peers: {', '.join(x['name'] for x in peers)}; {os.cpu_count()} cores")

    # ------------------------------------------------------------ agreement first
    check_x, check_d = load(d, "check_x"), load(d, "check_denoised")
    q_eff = np.concatenate([np.repeat(queries[:1], k, 0), np.repeat(p["null_query"].reshape(1, -1), k, 0)])
    sig = np.full((2 * k, 1), m["check_sigma"], np.float32)
    ours_seeds = load(d, "seeds").reshape(nq, k, T)
    for peer in peers:
        e_fwd = scaled_error(peer["forward"](check_x, sig, q_eff), check_d)
        e_seeds = max(scaled_error(peer["sample"](queries[i:i + 1], noise[i * k:(i + 1) * k]), ours_seeds[i])
                      for i in range(nq))
        # All queries in one batch: the same seeds as one at a time.
        e_batch = scaled_error(peer["sample"](queries, noise), ours_seeds.reshape(nq * k, T))
        e_seeds = max(e_seeds, e_batch)
        ok = e_fwd <= 1e-4 and e_seeds <= 1e-4
        print(f"agreement {peer['name']}: denoiser max error {e_fwd:.2e}, {nq}×{k} seeds after "
              f"{2 * (len(m['sigmas']) - 1) - 1} evaluations max error {e_seeds:.2e} -> {'OK' if ok else 'FAIL'}")
        results.setdefault("agreement", {})[peer["name"]] = {"denoiser": e_fwd, "seeds": e_seeds}
        if not ok:
            failures.append(peer["name"])

    import faiss
    import hnswlib
    faiss.omp_set_num_threads(os.cpu_count())
    catalogue = load(d, "catalogue")
    flat = faiss.IndexFlatIP(T)
    flat.add(catalogue)
    seeds_flat = ours_seeds.reshape(-1, T)
    _, ids = flat.search(seeds_flat, 10)
    ours_ids = load(d, "flat_ids").astype(np.int64)
    same = float(np.mean([set(a) == set(b) for a, b in zip(ids, ours_ids)]))
    overlap = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, ours_ids)]))
    print(f"agreement faiss IndexFlatIP: identical top-10 sets for {same:.4f} of {len(ids)} seeds "
          f"(mean overlap {overlap:.4f})")
    results["agreement"]["faiss_flat"] = {"identical_sets": same, "overlap": overlap}
    if overlap < 0.999:
        failures.append("faiss flat")

    ours = Ours(args.ours, d)
    print(f"ours: {ours.threads} rayon threads")
    timings = {}

    def record(name, ms):
        timings.setdefault(name, []).extend(ms)

    r = args.repeats
    for rep in range(r):
        if "sample" in sections:
            record("sample/ours fast", ours.ask("sample fast 5")["ms"])
            for peer in peers:
                record(f"sample/{peer['name']}",
                       time_calls(lambda i: peer["sample"](queries[i % nq:i % nq + 1],
                                                           noise[(i % nq) * k:(i % nq + 1) * k]), 5))
            if rep < 2:
                record("sample/ours burn (flex)", ours.ask("sample burn 2")["ms"])
        if "sample64" in sections:
            # 64 queries sampled together (4,096 network rows per evaluation).
            q64, n64 = np.resize(queries, (64, Q)), np.resize(noise, (64 * k, T))
            record("sample64/ours fast", ours.ask("sample batch 64 2")["ms"])
            for peer in peers:
                record(f"sample64/{peer['name']}", time_calls(lambda i: peer["sample"](q64, n64), 2))
        if "sgemm" in sections:
            # The machine's GEMM rate: 2048³ single precision, all cores.
            a = np.resize(np.arange(7, dtype=np.float32) * 0.1, (2048, 2048))
            record("sgemm2048/ours gemm crate", ours.ask("sgemm 2048 5")["ms"])
            record("sgemm2048/numpy (OpenBLAS)", time_calls(lambda i: a @ a, 5))
        if "forward" in sections:
            for rows in (64, 1024):
                record(f"forward{rows}/ours fast", ours.ask(f"forward fast {rows} 10")["ms"])
                record(f"forward{rows}/ours burn (flex)", ours.ask(f"forward burn {rows} 10")["ms"])
                x = np.resize(check_x, (rows, T))
                s = np.full((rows, 1), 2.0, np.float32)
                qe = np.resize(q_eff, (rows, Q))
                for peer in peers:
                    record(f"forward{rows}/{peer['name']}", time_calls(lambda i: peer["forward"](x, s, qe), 10))
        if "flat" in sections:
            record("flat/ours FlatIndex", ours.ask("flat 30")["ms"])
            record("flat/faiss IndexFlatIP", time_calls(
                lambda i: flat.search(ours_seeds[i % nq], 10), 30))
            record("flat/numpy GEMM only (no top-k)", time_calls(
                lambda i: ours_seeds[i % nq] @ catalogue.T, 30))
        print(f"repeat {rep + 1}/{r} done", file=sys.stderr)

    if "hnsw" in sections:
        hq = load(d, "hnsw_queries")
        _, truth = flat.search(hq, 10)
        t = time.perf_counter()
        fh = faiss.IndexHNSWFlat(T, 32, faiss.METRIC_INNER_PRODUCT)
        fh.hnsw.efConstruction = 200
        fh.add(catalogue)
        faiss_build = time.perf_counter() - t
        t = time.perf_counter()
        hl = hnswlib.Index(space="ip", dim=T)
        hl.init_index(max_elements=catalogue.shape[0], ef_construction=200, M=32, random_seed=0)
        hl.set_num_threads(os.cpu_count())
        hl.add_items(catalogue)
        hnswlib_build = time.perf_counter() - t
        results["hnsw_build_s"] = {"ours": ours.hnsw_build_s, "faiss": faiss_build, "hnswlib": hnswlib_build}
        print(f"HNSW builds (M 32, efConstruction 200): ours {ours.hnsw_build_s:.1f} s, "
              f"faiss {faiss_build:.1f} s, hnswlib {hnswlib_build:.1f} s")

        def recall(found):
            return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)]))

        for ef in (16, 32, 64, 128):
            for rep in range(r):
                reply = ours.ask(f"hnsw {ef} 3")
                record(f"hnsw{ef}/ours HnswIndex", reply["ms"])
                results.setdefault("recall", {})[f"hnsw{ef}/ours HnswIndex"] = reply["recall"]
                fh.hnsw.efSearch = ef
                record(f"hnsw{ef}/faiss IndexHNSWFlat", time_calls(lambda i: fh.search(hq, 10), 3))
                hl.set_ef(ef)
                record(f"hnsw{ef}/hnswlib", time_calls(lambda i: hl.knn_query(hq, k=10), 3))
            # One query per call, one thread: a service answering queries as they come.
            faiss.omp_set_num_threads(1)
            hl.set_num_threads(1)
            for rep in range(r):
                reply = ours.ask(f"hnsw-single {ef} 1")
                record(f"hnsw{ef}single/ours HnswIndex", reply["ms"])
                results["recall"][f"hnsw{ef}single/ours HnswIndex"] = reply["recall"]
                fh.hnsw.efSearch = ef
                record(f"hnsw{ef}single/faiss IndexHNSWFlat",
                       time_calls(lambda i: [fh.search(q[None], 10) for q in hq], 1))
                hl.set_ef(ef)
                record(f"hnsw{ef}single/hnswlib", time_calls(lambda i: [hl.knn_query(q[None], k=10) for q in hq], 1))
                # The peers' own per-query cost without Python's per-call overhead: every query in
                # one call, on one thread (the same work as one query at a time, in C++).
                record(f"hnsw{ef}single/faiss, one call, 1 thread", time_calls(lambda i: fh.search(hq, 10), 1))
                record(f"hnsw{ef}single/hnswlib, one call, 1 thread", time_calls(lambda i: hl.knn_query(hq, k=10), 1))
            faiss.omp_set_num_threads(os.cpu_count())
            hl.set_num_threads(os.cpu_count())
            for suffix in ("", "single"):
                fh.hnsw.efSearch = ef
                results["recall"][f"hnsw{ef}{suffix}/faiss IndexHNSWFlat"] = recall(fh.search(hq, 10)[1])
                hl.set_ef(ef)
                results["recall"][f"hnsw{ef}{suffix}/hnswlib"] = recall(hl.knn_query(hq, k=10)[0])
            fh.hnsw.efSearch = ef
            hl.set_ef(ef)
            results["recall"][f"hnsw{ef}/hnswlib"] = recall(hl.knn_query(hq, k=10)[0])
        results["hnsw_queries"] = int(hq.shape[0])
        results["hnsw_equal_recall"] = hnsw_equal_recall(ours, fh, hl, hq, recall, r)
    ours.close()

    if "train" in sections:
        train_section(args, record, r)

    # ------------------------------------------------------------ report
    print("\n| workload | implementation | median ms | speed-up of ours (peer/ours) | notes |")
    print("|---|---|---:|---:|---|")
    groups = {}
    for name, ms in timings.items():
        groups.setdefault(name.split("/")[0], []).append((name.split("/", 1)[1], statistics.median(ms), len(ms)))
    medians = {}
    for group, rows in groups.items():
        our_rows = [x for x in rows if x[0].startswith("ours")]
        base = our_rows[0][1]
        for impl, med, n in rows:
            medians[f"{group}/{impl}"] = med
            note = f"{n} calls"
            rec = results.get("recall", {}).get(f"{group}/{impl}")
            if rec is not None:
                note += f", recall@10 {rec:.3f}, {results['hnsw_queries'] / med * 1e3:,.0f} q/s"
            ratio = "" if impl.startswith("ours") else f"{med / base:.2f}×"
            print(f"| {group} | {impl} | {med:.3f} | {ratio} | {note} |")
    results["median_ms"] = medians
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if failures:
        print(f"AGREEMENT FAILED: {failures}")
        sys.exit(1)


if __name__ == "__main__":
    main()
