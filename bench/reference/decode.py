"""PyTorch reference of the decode benchmark (bench/engine-decode.ts): the same decoder-only transformer
(RMSNorm, RoPE, causal GQA attention, SwiGLU, tied embeddings, vocab 260), a batched prefill of the
contexts, then a KV-cache loop that feeds one token per row per step and samples the next from
softmax(logits / T) with its log-prob. Written as a plain loop (no CUDA graphs, no compilation), the way
the engine runs it. A benchmark reference only; not part of horizon.
Usage: python3 bench/reference/decode.py --sizes small,large --batches 1,64,256 --dtype fp32
"""
import argparse, json, math, time
import torch
import torch.nn.functional as F

SIZES = {
    "small": dict(d=256, layers=4, heads=4),
    "large": dict(d=1024, layers=12, heads=16),
}
VOCAB = 260


def ffn_hidden(d):
    return int(math.ceil(math.ceil(8 * d / 3) / 8) * 8)


class Model:
    def __init__(self, d, layers, heads, max_len, device, dtype):
        g = torch.Generator(device="cpu").manual_seed(0)
        w = lambda *shape: (torch.randn(*shape, generator=g) * 0.02).to(device, dtype)
        f = ffn_hidden(d)
        self.d, self.h, self.dh = d, heads, d // heads
        self.emb = w(VOCAB, d)
        self.layers = [dict(q=w(d, d), k=w(d, d), v=w(d, d), o=w(d, d), gate=w(f, d), up=w(f, d), down=w(d, f),
                            n1=torch.ones(d, device=device, dtype=dtype), n2=torch.ones(d, device=device, dtype=dtype)) for _ in range(layers)]
        self.norm = torch.ones(d, device=device, dtype=dtype)
        inv = 10000.0 ** (-torch.arange(0, self.dh // 2, dtype=torch.float32) * 2 / self.dh)
        ang = torch.arange(max_len, dtype=torch.float32)[:, None] * inv[None, :]
        self.cos, self.sin = ang.cos().to(device, dtype), ang.sin().to(device, dtype)

    @staticmethod
    def rms(x, w):
        return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5).to(x.dtype) * w

    def rope(self, x, pos):  # x [B, H, T, dh], pos [T]
        c, s = self.cos[pos], self.sin[pos]
        x1, x2 = x[..., : self.dh // 2], x[..., self.dh // 2 :]
        return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)

    def forward(self, tokens, start, cache):
        """tokens [B, T] at positions start..start+T-1; cache: list of (k, v) [B, H, S, dh] filled up to start."""
        B, T = tokens.shape
        pos = torch.arange(start, start + T, device=tokens.device)
        x = self.emb[tokens]
        for layer, (kc, vc) in zip(self.layers, cache):
            h = self.rms(x, layer["n1"])
            q, k, v = ((h @ layer[n].T).view(B, T, self.h, self.dh).transpose(1, 2) for n in ("q", "k", "v"))
            q, k = self.rope(q, pos), self.rope(k, pos)
            kc[:, :, start : start + T], vc[:, :, start : start + T] = k, v
            a = F.scaled_dot_product_attention(q, kc[:, :, : start + T], vc[:, :, : start + T], is_causal=T > 1)
            x = x + a.transpose(1, 2).reshape(B, T, self.d) @ layer["o"].T
            h = self.rms(x, layer["n2"])
            x = x + (F.silu(h @ layer["gate"].T) * (h @ layer["up"].T)) @ layer["down"].T
        return self.rms(x[:, -1], self.norm) @ self.emb.T


@torch.no_grad()
def measure(name, s, batch, context, new, dtype, device):
    torch_dtype = torch.float32 if dtype == "fp32" else torch.bfloat16
    model = Model(s["d"], s["layers"], s["heads"], context + new, device, torch_dtype)
    tokens = torch.randint(0, 256, (batch, context), device=device)

    def run():
        shape = (batch, model.h, context + new, model.dh)
        cache = [(torch.zeros(shape, device=device, dtype=torch_dtype), torch.zeros(shape, device=device, dtype=torch_dtype)) for _ in model.layers]
        logits = model.forward(tokens, 0, cache)
        out = []
        for t in range(new):
            lp = torch.log_softmax(logits.float(), -1)
            nxt = torch.multinomial(lp.exp(), 1)
            out.append((nxt, lp.gather(-1, nxt)))
            logits = model.forward(nxt, context + t, cache)
        return out

    run()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    run()
    torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    return dict(name=name, batch=batch, context=context, newTokens=new, sec=sec, tokensPerSec=batch * new / sec, dtype=dtype)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="small,large")
    ap.add_argument("--batches", default="1,64,256")
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--json")
    a = ap.parse_args()
    device = torch.device("cuda")
    res = [measure(n, SIZES[n], int(b), a.context, a.new, a.dtype, device) for n in a.sizes.split(",") for b in a.batches.split(",")]
    print(f"PyTorch {torch.__version__} decode reference, {a.dtype}, device {torch.cuda.get_device_name(0)}\n")
    print("| size | batch | context + new | s | tokens / s |")
    print("|---|---|---|---|---|")
    for r in res:
        print(f"| {r['name']} | {r['batch']} | {r['context']} + {r['newTokens']} | {r['sec']:.3f} | {round(r['tokensPerSec']):,} |")
    if a.json:
        json.dump(dict(dtype=a.dtype, results=res), open(a.json, "w"), indent=2)


if __name__ == "__main__":
    main()
