"""The PyTorch side of experiments/bench: the same LLaMA-style model as `lte` (RMSNorm, RoPE in
rotate-half form, SwiGLU, no biases, untied lm_head), timed in eager mode on the CPU.

Modes (one per process, so peak RSS is the mode's own):
  full        dense AdamW step on every parameter
  lora        one LoRA head (rank r) on every linear layer but lm_head, W frozen
  lte-worker  the LTE emulation of the paper's reference code: all N heads in one model, the batch
              split across heads (each head sees its own batch of `batch` sequences), every linear
              layer wrapped as  y = x Wᵀ + s·(x Aᵢᵀ) Bᵢᵀ − s·(x Aᵢ⁰ᵀ) Bᵢ⁰ᵀ,  a reset-less merge every T
  forward     forward pass and loss only, no autograd

Prints one JSON object: tokens_per_s (median step), peak_rss_mb (ru_maxrss of this process).
"""
import argparse, json, math, os, resource, statistics, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Config:
    def __init__(self, d):
        m = d["model"]
        self.vocab = m["vocab_size"]; self.dim = m["hidden_size"]; self.layers = m["num_hidden_layers"]
        self.heads = m["num_attention_heads"]; self.kv_heads = m.get("num_key_value_heads", self.heads)
        self.ffn = m["intermediate_size"]; self.ctx = m["max_position_embeddings"]
        self.theta = m.get("rope_theta", 10000.0); self.eps = m.get("rms_norm_eps", 1e-5)
        self.batch = d["training"]["batch_size"]


class MultiHeadLoRALinear(nn.Module):
    """W frozen; N heads of (A, B) and their last-merged copies (A⁰, B⁰). The input's leading batch
    dimension is split into N equal parts, part i going through head i."""

    def __init__(self, base: nn.Linear, heads: int, rank: int, alpha: float):
        super().__init__()
        self.base = base
        base.weight.requires_grad_(False)
        n, m = base.in_features, base.out_features
        self.heads, self.scale = heads, alpha / rank
        a = torch.empty(heads, rank, n)
        for i in range(heads):
            nn.init.orthogonal_(a[i])
        self.A = nn.Parameter(a * math.sqrt(n / rank))
        self.B = nn.Parameter(torch.zeros(heads, m, rank))
        self.register_buffer("A0", torch.zeros(heads, rank, n))
        self.register_buffer("B0", torch.zeros(heads, m, rank))
        self.has_correction = False

    def forward(self, x):
        y = self.base(x)
        shape = x.shape
        xh = x.reshape(self.heads, -1, shape[-1])                  # (N, b·T, n)
        delta = torch.bmm(torch.bmm(xh, self.A.transpose(1, 2)), self.B.transpose(1, 2))
        if self.has_correction:
            delta = delta - torch.bmm(torch.bmm(xh, self.A0.transpose(1, 2)), self.B0.transpose(1, 2))
        return y + self.scale * delta.reshape(*shape[:-1], -1)

    @torch.no_grad()
    def merge(self):
        """W ← W + (s/N) Σᵢ (BᵢAᵢ − Bᵢ⁰Aᵢ⁰);  (Aᵢ⁰, Bᵢ⁰) ← (Aᵢ, Bᵢ)."""
        delta = torch.bmm(self.B, self.A) - torch.bmm(self.B0, self.A0)
        self.base.weight += self.scale / self.heads * delta.sum(0)
        self.A0.copy_(self.A); self.B0.copy_(self.B)
        self.has_correction = True


def rope_tables(c):
    hd = c.dim // c.heads
    inv = 1.0 / (c.theta ** (torch.arange(0, hd, 2).float() / hd))
    f = torch.outer(torch.arange(c.ctx).float(), inv)
    emb = torch.cat([f, f], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__(); self.weight = nn.Parameter(torch.ones(dim)); self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        hd = c.dim // c.heads
        self.c, self.hd = c, hd
        self.attn_norm, self.mlp_norm = RMSNorm(c.dim, c.eps), RMSNorm(c.dim, c.eps)
        self.q = nn.Linear(c.dim, c.heads * hd, bias=False)
        self.k = nn.Linear(c.dim, c.kv_heads * hd, bias=False)
        self.v = nn.Linear(c.dim, c.kv_heads * hd, bias=False)
        self.o = nn.Linear(c.heads * hd, c.dim, bias=False)
        self.gate = nn.Linear(c.dim, c.ffn, bias=False)
        self.up = nn.Linear(c.dim, c.ffn, bias=False)
        self.down = nn.Linear(c.ffn, c.dim, bias=False)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        h = self.attn_norm(x)
        q = self.q(h).view(b, t, self.c.heads, self.hd).transpose(1, 2)
        k = self.k(h).view(b, t, self.c.kv_heads, self.hd).transpose(1, 2)
        v = self.v(h).view(b, t, self.c.kv_heads, self.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.c.kv_heads != self.c.heads)
        x = x + self.o(a.transpose(1, 2).reshape(b, t, -1))
        h = self.mlp_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = nn.Embedding(c.vocab, c.dim)
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.layers)])
        self.norm = RMSNorm(c.dim, c.eps)
        self.lm_head = nn.Linear(c.dim, c.vocab, bias=False)
        cos, sin = rope_tables(c)
        self.register_buffer("cos", cos); self.register_buffer("sin", sin)

    def forward(self, tokens, targets):
        t = tokens.shape[1]
        x = self.embed(tokens)
        for blk in self.blocks:
            x = blk(x, self.cos[:t], self.sin[:t])
        logits = self.lm_head(self.norm(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def wrap_linears(model, heads, rank, alpha):
    wrapped = []
    for blk in model.blocks:
        for name in ["q", "k", "v", "o", "gate", "up", "down"]:
            w = MultiHeadLoRALinear(getattr(blk, name), heads, rank, alpha)
            setattr(blk, name, w); wrapped.append(w)
    return wrapped


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--mode", choices=["full", "lora", "lte-worker", "forward"], required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--heads", type=int, default=4, help="LTE heads (lte-worker)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1337)
    cfg = json.load(open(args.config))
    c = Config(cfg)
    lte = cfg.get("lte", {})
    rank, alpha, every = lte.get("rank", 8), lte.get("alpha", 64), lte.get("merge_every", 10)
    heads = args.heads if args.mode == "lte-worker" else 1
    batch = c.batch * heads                        # every head gets its own `batch` sequences
    model = Model(c)
    wrapped = wrap_linears(model, heads, rank, alpha) if args.mode in ("lora", "lte-worker") else []
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.1) if args.mode != "forward" else None
    gen = torch.Generator().manual_seed(1)

    def batch_tokens():
        x = torch.randint(0, c.vocab, (batch, c.ctx + 1), generator=gen)
        return x[:, :-1].contiguous(), x[:, 1:].contiguous()

    times = []
    for i in range(args.warmup + args.steps):
        x, y = batch_tokens()
        t0 = time.perf_counter()
        if opt is None:
            with torch.no_grad():
                model(x, y)
        else:
            opt.zero_grad(set_to_none=True)
            loss = model(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if args.mode == "lte-worker" and (i + 1) % every == 0:
                for w in wrapped:
                    w.merge()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    print(json.dumps({
        "impl": "torch", "mode": args.mode, "threads": args.threads, "heads": heads,
        "tokens_per_step": batch * c.ctx, "tokens_per_s": round(batch * c.ctx / step, 1),
        "step_ms": round(step * 1000, 2), "torch": torch.__version__,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
