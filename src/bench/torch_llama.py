"""PyTorch baseline of the `llama` benchmark suite (bench/llama.ts): the same HF-layout LLaMA in plain PyTorch
on the CPU, fp32, as transformers' eager LlamaForCausalLM computes it (nn.Linear products, rotate-half RoPE,
a KV cache that grows by torch.cat every step, as transformers' DynamicCache does). Only torch and numpy are
needed; the safetensors file is read with numpy.

    python3 bench/torch_llama.py MODEL_DIR THREADS

Then one command per line on stdin, one answer per line on stdout:
    prefill N        runs an N-token prefill (fresh cache), answers "ok"
    decode C         runs one decode step over a cache of C tokens (kept, not grown), answers "ok"
    logits 1,2,3     answers the last position's logits of a prefill of those ids, as JSON
    quit
"""
import json
import math
import struct
import sys

import numpy as np
import torch


def load_safetensors(path):
    with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode='r', offset=8 + n)
    tensors = {}
    for name, t in header.items():
        if name == '__metadata__':
            continue
        if t['dtype'] != 'F32':
            raise SystemExit(f'{name}: {t["dtype"]}, only F32 is read')
        a, b = t['data_offsets']
        tensors[name] = torch.from_numpy(np.array(data[a:b]).view(np.float32).reshape(t['shape']))
    return tensors


class Llama:
    def __init__(self, model_dir):
        with open(f'{model_dir}/config.json') as f:
            cfg = json.load(f)
        self.w = load_safetensors(f'{model_dir}/model.safetensors')
        self.layers = cfg['num_hidden_layers']
        self.heads = cfg['num_attention_heads']
        self.kv_heads = cfg.get('num_key_value_heads', self.heads)
        self.head_dim = cfg['hidden_size'] // self.heads
        self.eps = cfg['rms_norm_eps']
        theta = cfg.get('rope_theta', 10000.0)
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.int64).float() / self.head_dim))

    def rms_norm(self, x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def rope(self, x, positions):
        angles = positions[:, None].float() * self.inv_freq[None, :]
        emb = torch.cat((angles, angles), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def forward(self, ids, cache):
        """ids [T] after the cache's tokens; cache: list of (k, v) [1, kv_heads, past, head_dim]. Returns last logits, new cache."""
        lin = torch.nn.functional.linear
        t = ids.shape[0]
        past = cache[0][0].shape[2]
        positions = torch.arange(past, past + t)
        h = self.w['model.embed_tokens.weight'][ids][None]
        mask = None
        if t > 1:
            mask = torch.full((t, past + t), torch.finfo(torch.float32).min).triu(past + 1)
        new_cache = []
        for i in range(self.layers):
            p = f'model.layers.{i}.'
            x = self.rms_norm(h, self.w[p + 'input_layernorm.weight'])
            q = lin(x, self.w[p + 'self_attn.q_proj.weight']).view(1, t, self.heads, self.head_dim).transpose(1, 2)
            k = lin(x, self.w[p + 'self_attn.k_proj.weight']).view(1, t, self.kv_heads, self.head_dim).transpose(1, 2)
            v = lin(x, self.w[p + 'self_attn.v_proj.weight']).view(1, t, self.kv_heads, self.head_dim).transpose(1, 2)
            q, k = self.rope(q, positions), self.rope(k, positions)
            k = torch.cat((cache[i][0], k), dim=2)
            v = torch.cat((cache[i][1], v), dim=2)
            new_cache.append((k, v))
            rep = self.heads // self.kv_heads
            kr = k.repeat_interleave(rep, dim=1) if rep > 1 else k
            vr = v.repeat_interleave(rep, dim=1) if rep > 1 else v
            scores = q @ kr.transpose(2, 3) / math.sqrt(self.head_dim)
            if mask is not None:
                scores = scores + mask
            o = torch.softmax(scores, dim=-1) @ vr
            h = h + lin(o.transpose(1, 2).reshape(1, t, -1), self.w[p + 'self_attn.o_proj.weight'])
            y = self.rms_norm(h, self.w[p + 'post_attention_layernorm.weight'])
            act = torch.nn.functional.silu(lin(y, self.w[p + 'mlp.gate_proj.weight'])) * lin(y, self.w[p + 'mlp.up_proj.weight'])
            h = h + lin(act, self.w[p + 'mlp.down_proj.weight'])
        last = self.rms_norm(h[:, -1:], self.w['model.norm.weight'])
        return lin(last, self.w['lm_head.weight'])[0, 0], new_cache

    def empty_cache(self, length):
        shape = (1, self.kv_heads, length, self.head_dim)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in range(self.layers)]


def main():
    model_dir, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    model = Llama(model_dir)
    vocab = model.w['model.embed_tokens.weight'].shape[0]
    caches = {}
    print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads()}), flush=True)
    with torch.inference_mode():
        for line in sys.stdin:
            cmd, _, arg = line.strip().partition(' ')
            if cmd == 'prefill':
                n = int(arg)
                model.forward(torch.arange(n) * 7919 % vocab, model.empty_cache(0))
                print('ok', flush=True)
            elif cmd == 'decode':
                c = int(arg)
                if c not in caches:
                    caches[c] = model.empty_cache(c)
                model.forward(torch.tensor([c % vocab]), caches[c])
                print('ok', flush=True)
            elif cmd == 'logits':
                ids = torch.tensor([int(s) for s in arg.split(',')])
                logits, _ = model.forward(ids, model.empty_cache(0))
                print(json.dumps(logits.tolist()), flush=True)
            elif cmd == 'quit':
                break
            else:
                raise SystemExit(f'unknown command {cmd!r}')


if __name__ == '__main__':
    main()
