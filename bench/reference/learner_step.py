"""PyTorch reference of the learner step measured by bench/learner.ts: the same decoder-only transformer
(RMSNorm, RoPE, causal attention, SwiGLU, tied embeddings, vocab 260) and the same LOOP step (per-token
clipped objective with a fixed divisor, backward, global-norm clip, AdamW). A benchmark reference only;
not part of horizon. Usage: python3 bench/reference/learner_step.py --sizes tiny,small --dtype fp32
"""
import argparse, json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F

SIZES = {
    "tiny": dict(d=64, layers=2, heads=4, batch=32, seq=128),
    "small": dict(d=256, layers=4, heads=4, batch=16, seq=256),
    "medium": dict(d=512, layers=8, heads=8, batch=16, seq=256),
    "large": dict(d=1024, layers=12, heads=16, batch=8, seq=512),
}
VOCAB = 260


def ffn_hidden(d):
    return int(math.ceil(math.ceil(8 * d / 3) / 8) * 8)


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w


def rope(x, cos, sin):  # x [B, H, T, Dh], rotate-half convention
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h = heads
        self.n1, self.n2 = RMSNorm(d), RMSNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        f = ffn_hidden(d)
        self.gate, self.up, self.down = nn.Linear(d, f, bias=False), nn.Linear(d, f, bias=False), nn.Linear(f, d, bias=False)

    def forward(self, x, cos, sin):
        B, T, D = x.shape
        h = self.n1(x)
        q, k, v = (p(h).view(B, T, self.h, D // self.h).transpose(1, 2) for p in (self.q, self.k, self.v))
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(a.transpose(1, 2).reshape(B, T, D))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Policy(nn.Module):
    def __init__(self, d, layers, heads, seq):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.norm = RMSNorm(d)
        dh = d // heads
        inv = 10000.0 ** (-torch.arange(0, dh // 2, dtype=torch.float32) * 2 / dh)
        ang = torch.arange(seq, dtype=torch.float32)[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos(), persistent=False)
        self.register_buffer("sin", ang.sin(), persistent=False)

    def log_probs(self, tokens):
        x = self.emb(tokens)
        for b in self.blocks:
            x = b(x, self.cos, self.sin)
        logits = self.norm(x) @ self.emb.weight.T
        lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, tokens[:, 1:, None])[..., 0]
        return F.pad(lp, (1, 0))


def measure(name, s, steps, dtype, device):
    torch.manual_seed(0)
    model = Policy(s["d"], s["layers"], s["heads"], s["seq"]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
    B, T = s["batch"], s["seq"]
    tokens = torch.randint(0, 256, (B, T), device=device)
    mask = (torch.arange(T, device=device) >= T // 2).float().expand(B, T)
    adv = torch.tensor([0.5 if b % 2 else -0.5 for b in range(B)], device=device)[:, None]
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
        old = model.log_probs(tokens).float()

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            new = model.log_probs(tokens).float()
        ratio = torch.exp((new - old).clamp(-20, 20))
        surr = torch.minimum(ratio * adv, ratio.clamp(0.9, 1.1) * adv) * mask
        loss = -(surr.sum(1) / mask.sum(1)).sum() / B
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step()
    torch.cuda.synchronize() if device.type == "cuda" else None
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize() if device.type == "cuda" else None
    ms = (time.perf_counter() - t0) / steps * 1000
    params = sum(p.numel() for p in model.parameters())
    return dict(name=name, params=params, batch=B, seqLen=T, stepMs=ms, tokensPerSec=B * T / (ms / 1000), dtype=dtype)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="tiny,small")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--json")
    a = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    card = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    res = [measure(n, SIZES[n], a.steps, a.dtype, device) for n in a.sizes.split(",")]
    print(f"PyTorch {torch.__version__} reference, {a.dtype}, device {card}\n")
    print("| size | params | batch × seq | ms / step | tokens / s |")
    print("|---|---|---|---|---|")
    for r in res:
        print(f"| {r['name']} | {r['params']} | {r['batch']}×{r['seqLen']} | {r['stepMs']:.1f} | {round(r['tokensPerSec']):,} |")
    if a.json:
        json.dump(dict(card=card, dtype=a.dtype, results=res), open(a.json, "w"), indent=2)


if __name__ == "__main__":
    main()
