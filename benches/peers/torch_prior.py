"""The diff4steer prior written once more in PyTorch, to time training and sampling side by side
with ours on the same machine (CPU, or a CUDA GPU).

The network is ours (diff4steer-models/src/prior.rs, network/): EDM preconditioning (Karras et al.
2022, Table 1) around a residual MLP — input layer plus a linear projection of the query into the
first hidden layer, `depth` blocks h += W₂·SiLU(FiLM(LN(W₁·SiLU(LN(h))))) with FiLM from
SiLU(c), c = MLP(Fourier(ln σ / 4)) + W_q·q, then SiLU(LN(h)) and the output layer; a learned null
query for classifier-free guidance. Training is the CLI's recipe (training/trainer.rs): EDM loss
with ln σ ~ N(1, 1), condition dropout 0.1, AdamW (lr 1e-3, weight decay 1e-4) with 200 warm-up
steps and cosine decay, global-norm clipping at 1, EMA 0.999 with warm-up, dropout 0.1 in the
blocks. Data are synthetic pairs of the reference shapes (384-d queries, 128-d targets).

    python torch_prior.py train  --device cpu --threads 2 --width 512 --depth 4 --batch 256 --steps 100
    python torch_prior.py sample --device cuda --width 512 --depth 4

Each command prints one JSON line.
"""

import argparse
import json
import math
import time

import torch
from torch import nn
import torch.nn.functional as F

QUERY_DIM, TARGET_DIM = 384, 128


class Block(nn.Module):
    def __init__(self, width, embedding, dropout):
        super().__init__()
        self.norm_in = nn.LayerNorm(width)
        self.linear_in = nn.Linear(width, width)
        self.norm_out = nn.LayerNorm(width)
        self.film = nn.Linear(embedding, 2 * width)
        self.dropout = nn.Dropout(dropout)
        self.linear_out = nn.Linear(width, width)
        nn.init.zeros_(self.linear_out.weight)
        nn.init.zeros_(self.linear_out.bias)
        self.width = width

    def forward(self, h, c):
        y = self.norm_out(self.linear_in(F.silu(self.norm_in(h))))
        scale, shift = self.film(F.silu(c)).split(self.width, dim=-1)
        return h + self.linear_out(self.dropout(F.silu(y * (scale + 1.0) + shift)))


class Prior(nn.Module):
    def __init__(self, width, depth, embedding=512, fourier=64, dropout=0.1, sigma_data=1.0):
        super().__init__()
        self.input = nn.Linear(TARGET_DIM, width)
        self.query_input = nn.Linear(QUERY_DIM, width, bias=False)
        self.blocks = nn.ModuleList([Block(width, embedding, dropout) for _ in range(depth)])
        self.norm_out = nn.LayerNorm(width)
        self.output = nn.Linear(width, TARGET_DIM)
        self.noise_in = nn.Linear(2 * fourier, embedding)
        self.noise_out = nn.Linear(embedding, embedding)
        self.query_projection = nn.Linear(QUERY_DIM, embedding)
        self.null_query = nn.Parameter(torch.randn(1, QUERY_DIM))
        k = torch.arange(fourier, dtype=torch.float64) / max(fourier - 1, 1)
        self.register_buffer("frequencies", (2 * math.pi * 0.5 * (128.0 ** k)).float())
        self.sigma_data = sigma_data

    def forward(self, x, sigma, query, null):
        """D(x; σ, q) with EDM preconditioning; `null` marks rows under ∅."""
        sd2 = self.sigma_data ** 2
        s = sigma.reshape(-1, 1)
        total = s * s + sd2
        c_in, c_skip, c_out = total.rsqrt(), sd2 / total, s * self.sigma_data * total.rsqrt()
        angle = (s.log() * 0.25) * self.frequencies
        c = self.noise_out(F.silu(self.noise_in(torch.cat([angle.sin(), angle.cos()], -1))))
        q = torch.where(null.reshape(-1, 1), self.null_query.expand_as(query), query)
        c = c + self.query_projection(q)
        h = self.input(x * c_in) + self.query_input(q)
        for block in self.blocks:
            h = block(h, c)
        return x * c_skip + self.output(F.silu(self.norm_out(h))) * c_out


def train_speed(a, device):
    torch.manual_seed(3)
    n = 4096
    queries = F.normalize(torch.randn(n, QUERY_DIM), dim=-1).to(device)
    targets = (F.normalize(torch.randn(n, TARGET_DIM), dim=-1) * 11.0 + 0.3).to(device)
    targets = (targets - targets.mean(0)) / targets.std(0)  # ours standardises the targets
    model = Prior(a.width, a.depth).to(device)
    ema = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    total = a.warmup + a.steps

    def lr(step):
        if step < 200:
            return 1e-3 * (step + 1) / 200
        t = (step - 200) / max(total - 200, 1)
        return 1e-3 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))

    def step(i):
        rows = torch.randint(0, n, (a.batch,), device=device)
        q, x0 = queries[rows], targets[rows]
        sigma = torch.exp(1.0 + torch.randn(a.batch, device=device))
        noise = torch.randn_like(x0)
        null = torch.rand(a.batch, device=device) < 0.1
        denoised = model(x0 + noise * sigma[:, None], sigma, q, null)
        weight = (sigma ** 2 + 1.0) / (sigma ** 2)
        loss = ((denoised - x0) ** 2 * weight[:, None]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for group in opt.param_groups:
            group["lr"] = lr(i)
        opt.step()
        decay = min(0.999, (1 + i) / (10 + i))
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in model.parameters()], 1 - decay)
        return loss

    model.train()
    for i in range(a.warmup):
        step(i)
    sync(device)
    started = time.perf_counter()
    for i in range(a.warmup, total):
        loss = step(i)
    loss = float(loss.detach())  # ours reads the loss back every step too
    sync(device)
    seconds = time.perf_counter() - started
    return {"what": "train", "peer": f"PyTorch {torch.__version__}", "device": device,
            "threads": torch.get_num_threads(), "width": a.width, "depth": a.depth,
            "batch": a.batch, "steps": a.steps, "steps_per_s": a.steps / seconds,
            "last_loss": loss}


@torch.inference_mode()
def sample_speed(a, device):
    torch.manual_seed(0)
    model = Prior(a.width, a.depth, sigma_data=0.5).to(device).eval()
    sig = [80.0 ** (1 / 7) + i / 15 * (0.002 ** (1 / 7) - 80.0 ** (1 / 7)) for i in range(16)]
    sigmas = [s ** 7 for s in sig] + [0.0]
    w, k = 2.0, 32

    def trajectory(queries):
        n = queries.shape[0]
        q = queries.repeat_interleave(k, 0)
        q2 = torch.cat([q, q])
        null = torch.cat([torch.zeros(n * k, dtype=torch.bool, device=device),
                          torch.ones(n * k, dtype=torch.bool, device=device)])

        def guided(x, s):
            d = model(torch.cat([x, x]), torch.full((2 * n * k,), s, device=device), q2, null)
            return d[: n * k] * (1 + w) - d[n * k:] * w

        x = torch.randn(n * k, TARGET_DIM, device=device) * sigmas[0]
        for s, s_next in zip(sigmas[:-2], sigmas[1:-1]):
            d = (x - guided(x, s)) / s
            x_euler = x + d * (s_next - s)
            d_next = (x_euler - guided(x_euler, s_next)) / s_next
            x = x + (d + d_next) * (0.5 * (s_next - s))
        return guided(x, sigmas[-2])

    def timed(n):
        queries = F.normalize(torch.randn(n, QUERY_DIM, device=device), dim=-1)
        trajectory(queries)
        sync(device)
        ms = []
        for _ in range(a.repeats):
            started = time.perf_counter()
            trajectory(queries).cpu()
            ms.append((time.perf_counter() - started) * 1e3)
        return sorted(ms)[len(ms) // 2]

    return {"what": "sample", "peer": f"PyTorch {torch.__version__}", "device": device,
            "threads": torch.get_num_threads(), "width": a.width, "depth": a.depth,
            "seeds": k, "evaluations": 31, "ms_one_query": timed(1), "ms_64_queries": timed(64)}


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["train", "sample"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--repeats", type=int, default=10)
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    result = train_speed(a, a.device) if a.what == "train" else sample_speed(a, a.device)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
